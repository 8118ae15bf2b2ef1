/* A hiredis client for the crash test of prevalent-kv (test/kv/crash_test.py, issue 8).
 *
 *   crash_client HOST PORT LOG set|multi PREFIX SEED
 *
 * Writes unique keys with unique values for ever (until SIGTERM) and appends what the server
 * acknowledged to LOG, one line each, written with a single write(2) after the reply arrived:
 *   set:   "S <key> <value>"   after SET key value answered +OK
 *   multi: "A <n>"             before transaction n is sent (attempted)
 *          "T <n> <value>"     after its EXEC answered three +OK; the transaction is
 *                              MULTI, SET PREFIX:n:0 value, SET PREFIX:n:1 value,
 *                              SET PREFIX:n:2 value, EXEC
 * A failed connection or a missing reply is not logged; the client reconnects every 10 ms
 * while the server is down and goes on with the next number (an unacknowledged write may or
 * may not have happened). */
#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static void log_line(int fd, const char* line) {
  size_t len = strlen(line);
  ssize_t n = write(fd, line, len);
  if (n != (ssize_t)len) {
    fprintf(stderr, "crash_client: write to the log failed: %s\n", strerror(errno));
    exit(2);
  }
}

static void random_value(char* out, size_t max, unsigned long long n, unsigned* seed) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t len = 1 + (size_t)(rand_r(seed) % 120);
  if (len > max - 32) len = max - 32;
  for (size_t i = 0; i < len; ++i) out[i] = alphabet[rand_r(seed) % (sizeof alphabet - 1)];
  snprintf(out + len, max - len, "-%llu", n);
}

static int is_status(const redisReply* r, const char* s) {
  return r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, s) == 0;
}

/* One transaction; 1 if EXEC answered three +OK. */
static int transaction(redisContext* c, const char* prefix, unsigned long long n,
                       const char* value) {
  char key[256];
  int ok = 1;
  redisAppendCommand(c, "MULTI");
  for (int i = 0; i < 3; ++i) {
    snprintf(key, sizeof key, "%s:%llu:%d", prefix, n, i);
    redisAppendCommand(c, "SET %s %s", key, value);
  }
  redisAppendCommand(c, "EXEC");
  for (int i = 0; i < 5; ++i) {
    redisReply* r = NULL;
    if (redisGetReply(c, (void**)&r) != REDIS_OK || r == NULL) return 0;
    if (i == 0 && !is_status(r, "OK")) ok = 0;
    if (i >= 1 && i <= 3 && !is_status(r, "QUEUED")) ok = 0;
    if (i == 4) {
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) ok = 0;
      for (size_t j = 0; ok && j < r->elements; ++j) ok = is_status(r->element[j], "OK");
    }
    freeReplyObject(r);
  }
  return ok;
}

int main(int argc, char** argv) {
  if (argc != 7 || (strcmp(argv[4], "set") != 0 && strcmp(argv[4], "multi") != 0)) {
    fprintf(stderr, "usage: crash_client HOST PORT LOG set|multi PREFIX SEED\n");
    return 2;
  }
  const char* host = argv[1];
  int port = atoi(argv[2]);
  int multi = strcmp(argv[4], "multi") == 0;
  const char* prefix = argv[5];
  unsigned seed = (unsigned)strtoul(argv[6], NULL, 10);
  int fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    fprintf(stderr, "crash_client: cannot open log %s: %s\n", argv[3], strerror(errno));
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  redisContext* c = NULL;
  unsigned long long n = 0, acked = 0;
  struct timeval timeout = {5, 0};
  char value[160], key[256], line[512];
  while (!stop) {
    if (c == NULL) {
      c = redisConnectWithTimeout(host, port, timeout);
      if (c == NULL || c->err) {
        if (c) redisFree(c);
        c = NULL;
        usleep(10000);
        continue;
      }
      redisSetTimeout(c, timeout);
    }
    ++n;
    random_value(value, sizeof value, n, &seed);
    int ok;
    if (multi) {
      snprintf(line, sizeof line, "A %llu\n", n);
      log_line(fd, line);
      ok = transaction(c, prefix, n, value);
      if (ok) snprintf(line, sizeof line, "T %llu %s\n", n, value);
    } else {
      snprintf(key, sizeof key, "%s:%llu", prefix, n);
      redisReply* r = redisCommand(c, "SET %s %s", key, value);
      ok = is_status(r, "OK");
      if (r) freeReplyObject(r);
      if (ok) snprintf(line, sizeof line, "S %s %s\n", key, value);
    }
    if (ok) {
      log_line(fd, line);
      ++acked;
    } else if (c->err) {
      redisFree(c);
      c = NULL;
    }
  }
  if (c) redisFree(c);
  fprintf(stderr, "crash_client %s: %llu attempted, %llu acknowledged\n", argv[4], n, acked);
  close(fd);
  return 0;
}
