# Readings of the server process, for bench/run.sh and bench/ab.sh (sourced;
# both keep the server's pid in SERVER_PID).

# The server's user+system CPU time so far, in clock ticks: fields 14 and 15
# of /proc/PID/stat, counted after the command name (which may hold spaces).
cpu_ticks() {
    sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
}
