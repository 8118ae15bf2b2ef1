# Plots the resident memory of the scale benchmark while a snapshot is written, one line per
# trace that `bench/scale/run.py --traces DIR` wrote (rss-PROGRAM-CODEC.csv: seconds,rss_mb).
#   gnuplot -e "files='DIR/rss-scale-std-map-json.csv DIR/rss-scale-json.csv'; \
#     out='docs/scale-rss.png'" bench/scale/rss.gp
set terminal pngcairo size 900,560 font "sans,11" noenhanced
set output out
set datafile separator ","
set title "Resident memory while a snapshot of 1,000,000 sessions is captured and written"
set xlabel "seconds since snapshot() was called"
set ylabel "resident memory (MB)"
set yrange [0:*]
set grid
set key bottom right
name(f) = system(sprintf("basename %s .csv | sed 's/^rss-//'", f))
plot for [i=1:words(files)] word(files, i) every ::1 using 1:2 with lines lw 2 \
  title name(word(files, i))
