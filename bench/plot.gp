# Plots commands/s against writer threads for the raw limit, prevalent (policy always),
# SQLite and (when the CSV has it) RocksDB with sync writes from a bench CSV.
#   gnuplot -e "csv='bench-results.csv'; out='docs/writers.png'" bench/plot.gp
set terminal pngcairo size 900,560 font "sans,11"
set output out
set title "Durable writes on 2 cores: commands/s by writer threads"
set xlabel "writer threads"
set ylabel "commands per second"
set logscale xy
set xrange [0.8:320]
set xtics (1, 4, 16, 64, 256)
set grid
set key top left
rows(group) = sprintf("< grep '^%s,' %s | sed -E 's/.*, ([0-9]+) threads\",([0-9.]+).*/\\1 \\2/'", group, csv)
raw = real(system(sprintf("grep 'beside 1 writer' %s | sed -E 's/.*writer\",([0-9.]+).*/\\1/'", csv)))
rocksdb_line = int(system(sprintf("grep -c '^rocksdb,' %s", csv))) == 0 ? "" : \
  'rows("rocksdb") using 1:2 with linespoints lw 2 pt 9 title "RocksDB, WriteOptions::sync",'
plot rows("writers") using 1:2 with linespoints lw 2 pt 7 title "prevalent, sync policy always", \
     rows("sqlite") using 1:2 with linespoints lw 2 pt 5 title "SQLite WAL, synchronous=FULL", \
     @rocksdb_line \
     raw with lines lw 2 dt 2 title "raw write+fdatasync loop (the limit for one writer)"
