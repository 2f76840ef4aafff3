#!/usr/bin/env bash
# A throw-away MIT Kerberos KDC for tests, confined to one directory.
#
#   kdc.sh start <dir>   create realm KAZOOTEST.ORG in <dir> and start krb5kdc in the background
#   kdc.sh stop <dir>    stop the KDC started in <dir> (by the pid in <dir>/kdc.pid)
#
# start writes into <dir> (created if missing, must not already hold a KDC):
#   krb5.conf      client profile: realm KAZOOTEST.ORG, KDC on 127.0.0.1:<port> (UDP only),
#                  aes128-cts-hmac-sha1-96 only, rdns=false, no DNS canonicalization
#   kdc.conf       KDC profile (database, stash, listen address, log file)
#   client.keytab  keys of client@KAZOOTEST.ORG
#   server.keytab  keys of zookeeper/127.0.0.1@KAZOOTEST.ORG
#   env            `source` it: KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5_TEST_ENV (= <dir>, where
#                  kazoo's tests look for the key tables), KRB5CCNAME (a ccache in <dir>, so
#                  nothing touches the user's default one) and KRB5RCACHEDIR (<dir>)
#   kdc.pid, kdc.log, port, db/ (the database and its stash)
# Extra principals: KDC_EXTRA_PRINCIPALS="name1 name2" adds each with its own keytab
# <dir>/<name with / and @ replaced by _>.keytab.
#
# The port is a free UDP port on 127.0.0.1 chosen at random; there is no TCP listener. The master
# password is random and not kept (the stash file is all the KDC needs).
#
# Needs the Debian packages krb5-kdc, krb5-admin-server (kadmin.local) and krb5-user (kinit).
# When they are missing and we run as root, start installs them with apt-get; otherwise it says
# what to install and fails. No system service is used or changed.
set -euo pipefail

REALM=KAZOOTEST.ORG
ENCTYPE=aes128-cts-hmac-sha1-96
PATH="$PATH:/usr/sbin:/sbin"

die() {
    echo "kdc.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: kdc.sh start|stop <dir>" >&2
    exit 2
}

ensure_tools() {
    local missing=()
    command -v krb5kdc >/dev/null || missing+=(krb5-kdc)
    command -v kdb5_util >/dev/null || missing+=(krb5-kdc)
    command -v kadmin.local >/dev/null || missing+=(krb5-admin-server)
    command -v kinit >/dev/null || missing+=(krb5-user)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        die "missing MIT Kerberos tools; install the packages: krb5-kdc krb5-admin-server krb5-user"
    fi
    echo "kdc.sh: installing krb5-kdc krb5-admin-server krb5-user" >&2
    # The packages' own services may fail to start (no realm configured); that does not matter here.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        krb5-kdc krb5-admin-server krb5-user >&2 || {
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            krb5-kdc krb5-admin-server krb5-user >&2
    }
    command -v krb5kdc >/dev/null && command -v kadmin.local >/dev/null && command -v kinit >/dev/null \
        || die "MIT Kerberos tools still missing after apt-get"
}

# Prints a UDP port on 127.0.0.1 that is free right now (python3 binds port 0), or a random one in
# 20000..59999 when python3 is missing; start retries with another port if krb5kdc cannot bind.
pick_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

write_profiles() {
    local dir="$1" port="$2"
    cat >"$dir/krb5.conf" <<EOF
[libdefaults]
    default_realm = $REALM
    dns_lookup_realm = false
    dns_lookup_kdc = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 65535
    ticket_lifetime = 24h
    renew_lifetime = 7d
    forwardable = true
    default_tkt_enctypes = $ENCTYPE
    default_tgs_enctypes = $ENCTYPE
    permitted_enctypes = $ENCTYPE

[realms]
    $REALM = {
        kdc = 127.0.0.1:$port
    }

[domain_realm]
    .kazootest.org = $REALM
    kazootest.org = $REALM
EOF
    cat >"$dir/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$port
    kdc_tcp_listen = ""

[realms]
    $REALM = {
        database_name = $dir/db/principal
        key_stash_file = $dir/db/stash
        acl_file = $dir/db/kadm5.acl
        master_key_type = $ENCTYPE
        supported_enctypes = $ENCTYPE:normal
        max_life = 24h
        max_renewable_life = 7d
        kdc_listen = 127.0.0.1:$port
        kdc_tcp_listen = ""
    }

[logging]
    kdc = FILE:$dir/kdc.log
    default = FILE:$dir/kdc.log
EOF
    echo "$port" >"$dir/port"
}

keytab_name() {
    local p="${1//\//_}"
    echo "${p//@/_}"
}

start() {
    local dir="$1"
    ensure_tools
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd -P)"
    [ -e "$dir/kdc.pid" ] && die "$dir already has a KDC (kdc.pid exists); stop it first"
    [ -e "$dir/db/principal" ] && die "$dir already holds a KDC database; use an empty directory"
    mkdir -p "$dir/db"
    chmod 700 "$dir/db"
    : >"$dir/db/kadm5.acl"

    export KRB5_CONFIG="$dir/krb5.conf"
    export KRB5_KDC_PROFILE="$dir/kdc.conf"
    export KRB5CCNAME="FILE:$dir/ccache"
    export KRB5RCACHEDIR="$dir"
    local port
    port="$(pick_port)"
    write_profiles "$dir" "$port"

    local master
    master="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    kdb5_util -r "$REALM" create -s -P "$master" >"$dir/kdb5_util.log" 2>&1 \
        || { cat "$dir/kdb5_util.log" >&2; die "kdb5_util create failed"; }
    unset master

    local principals=("client@$REALM:client.keytab" "zookeeper/127.0.0.1@$REALM:server.keytab")
    local p
    for p in ${KDC_EXTRA_PRINCIPALS:-}; do
        case "$p" in *@*) ;; *) p="$p@$REALM" ;; esac
        principals+=("$p:$(keytab_name "$p").keytab")
    done
    local entry name keytab
    for entry in "${principals[@]}"; do
        name="${entry%:*}"
        keytab="$dir/${entry##*:}"
        rm -f "$keytab"
        kadmin.local -r "$REALM" -q "add_principal -randkey $name" >>"$dir/kadmin.log" 2>&1 \
            || { cat "$dir/kadmin.log" >&2; die "cannot add $name"; }
        kadmin.local -r "$REALM" -q "ktadd -k $keytab -norandkey $name" >>"$dir/kadmin.log" 2>&1 \
            || { cat "$dir/kadmin.log" >&2; die "cannot export $name to $keytab"; }
        [ -s "$keytab" ] || die "no key table written for $name"
    done

    # krb5kdc binds its sockets, then forks into the background and writes the pid file. If the
    # port was taken in the meantime, pick another and try again.
    local attempt
    for attempt in 1 2 3 4 5; do
        rm -f "$dir/kdc.pid"
        if krb5kdc -r "$REALM" -P "$dir/kdc.pid" >>"$dir/kdc.log" 2>&1; then
            local i
            for i in $(seq 50); do
                [ -s "$dir/kdc.pid" ] && break
                sleep 0.1
            done
            [ -s "$dir/kdc.pid" ] && break
        fi
        if [ "$attempt" -eq 5 ]; then
            tail -n 20 "$dir/kdc.log" >&2 || true
            die "krb5kdc did not start"
        fi
        port="$(pick_port)"
        write_profiles "$dir" "$port"
    done

    cat >"$dir/env" <<EOF
export KRB5_CONFIG='$dir/krb5.conf'
export KRB5_KDC_PROFILE='$dir/kdc.conf'
export KRB5_TEST_ENV='$dir'
export KRB5CCNAME='FILE:$dir/ccache'
export KRB5RCACHEDIR='$dir'
EOF

    # Smoke test: the client gets a ticket from its key table and one for the service.
    local check="FILE:$dir/ccache.startcheck"
    if ! kinit -c "$check" -kt "$dir/client.keytab" "client@$REALM" >>"$dir/kdc.log" 2>&1 \
        || ! kvno -c "$check" "zookeeper/127.0.0.1@$REALM" >>"$dir/kdc.log" 2>&1; then
        tail -n 20 "$dir/kdc.log" >&2 || true
        stop "$dir"
        die "the KDC does not issue tickets"
    fi
    kdestroy -c "$check" >/dev/null 2>&1 || true
    echo "kdc.sh: KDC for $REALM on udp 127.0.0.1:$port (pid $(cat "$dir/kdc.pid")); source $dir/env"
}

stop() {
    local dir="$1"
    local pidfile="$dir/kdc.pid"
    [ -s "$pidfile" ] || { echo "kdc.sh: no KDC running in $dir"; return 0; }
    local pid
    pid="$(cat "$pidfile")"
    case "$pid" in '' | *[!0-9]*) die "bad pid file $pidfile" ;; esac
    # Only end the process if it still is a krb5kdc (the pid may have been reused).
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = krb5kdc ]; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
    echo "kdc.sh: stopped the KDC in $dir"
}

[ "$#" -eq 2 ] || usage
case "$1" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    *) usage ;;
esac
