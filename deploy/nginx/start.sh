#!/bin/sh
# nginx's command in deploy/compose.yaml: nginx.conf with its resolver set to the DNS server this container was
# given (the first nameserver of /etc/resolv.conf), then nginx in the foreground. nginx.conf names Docker's
# embedded DNS (127.0.0.11), which podman has not: its DNS (aardvark-dns) answers at the network's gateway. Under
# Docker the line comes out as it was. The resolved config is written to /tmp (the root filesystem may be read-only).
set -eu
ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
case $ns in *:*) ns="[$ns]" ;; esac  # an IPv6 address goes in brackets
sed "s/resolver 127\.0\.0\.11 /resolver ${ns:-127.0.0.11} /" /etc/nginx/nginx.conf >/tmp/nginx.conf
grep -q "resolver ${ns:-127.0.0.11} " /tmp/nginx.conf || { echo "leafdoc: no resolver line in nginx.conf" >&2; exit 1; }
echo "leafdoc: nginx resolves the replicas' names with ${ns:-127.0.0.11} (from /etc/resolv.conf)" >&2
exec nginx -c /tmp/nginx.conf -g "daemon off;"
