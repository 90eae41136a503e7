#!/usr/bin/env bash
# influx_http.sh SLUICED CLIENT - Debian's python3-influxdb writes to sluiced's InfluxDB 1.x
# HTTP API on loopback (sluiced with no DPDK port); every point reads back exactly
# (influx_http_client.py). The node is stopped by PID, its temp dir removed, also when the
# test fails.
set -euo pipefail
SLUICED=$1 CLIENT=$2
if ! /usr/bin/python3 -c 'import influxdb' 2>/dev/null; then
	echo "influx_http: python3-influxdb missing (scripts/deps.sh installs it)"; exit 1
fi
ID=$$
NAME=ihttp$ID
. "$(dirname "$0")/lib.sh"
HP=$((21000 + ID % 10000))
sl_start_node "$SLUICED" -- --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 \
	--set "http.listen=127.0.0.1:$HP" --set net.kernel_udp=off
/usr/bin/python3 "$CLIENT" 127.0.0.1 "$HP" "$SL_SOCK"
sl_stop_node
echo "influx_http: PASS"
