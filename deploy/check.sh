#!/usr/bin/env bash
# Offline checks of the operations kit. From the repository root:
#
#   deploy/check.sh                 # rules and their tests, dashboards, YAML,
#                                   # compose wiring, kustomize, NATS
#                                   # configurations and versions, and
#                                   # go test ./deploy/
#   deploy/check.sh scrape.txt      # ... and `promtool check metrics` on a scrape
#                                   # (curl -s localhost:8080/metrics > scrape.txt)
#
# Installs promtool (Debian package "prometheus") when it is missing. Checks
# that need a tool that is not there are skipped with a message, never
# silently.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deploy=deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n== %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------

# apt_install PACKAGE COMMAND: install a Debian package that provides COMMAND.
apt_install() {
	local pkg=$1 cmd=$2 sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || fail "$cmd is missing and sudo is not available: apt-get install $pkg"
		sudo=(sudo)
	fi
	echo "$cmd not found: installing the Debian package $pkg"
	if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$pkg" >"$tmp/apt.log" 2>&1; then
		# The package lists may be stale or absent; refresh them once.
		"${sudo[@]}" apt-get update -qq >>"$tmp/apt.log" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$pkg" >>"$tmp/apt.log" 2>&1 ||
			{ cat "$tmp/apt.log" >&2; fail "could not install $pkg"; }
	fi
	command -v "$cmd" >/dev/null || fail "the $pkg package did not provide $cmd"
}

command -v promtool >/dev/null || apt_install prometheus promtool
command -v python3 >/dev/null || apt_install python3 python3
echo "promtool: $(promtool --version 2>&1 | head -n1)"

have_pyyaml=false
if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
	have_pyyaml=true
fi

# --- Prometheus ---------------------------------------------------------------

step "alert rules"
promtool check rules "$deploy/prometheus/alerts.yaml"

step "alert rule tests"
promtool test rules "$deploy/prometheus/alerts_test.yaml"

step "alerts: runbook links, tests of both sides"
# Every alert links its runbook section in deploy/README.md (a heading
# whose GitHub anchor is the link's fragment), and alerts_test.yaml shows
# every alert both firing and not firing.
if $have_pyyaml; then
	python3 - "$deploy/prometheus/alerts.yaml" "$deploy/prometheus/alerts_test.yaml" "$deploy/README.md" <<'PY'
import re, sys, yaml
rules_file, tests_file, readme = sys.argv[1:]
base = "https://github.com/acme/campaign-ingest/blob/main/deploy/README.md#"

def anchor(heading):
    # GitHub: lower case, punctuation other than - and _ dropped, spaces to -.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

anchors = set()
for line in open(readme):
    m = re.match(r"#{1,6} (.+)", line)
    if m:
        anchors.add(anchor(m.group(1)))
errors = []
alerts = [r for g in yaml.safe_load(open(rules_file))["groups"] for r in g["rules"] if "alert" in r]
for r in alerts:
    url = r.get("annotations", {}).get("runbook_url", "")
    if not url.startswith(base):
        errors.append(f"{r['alert']}: runbook_url {url!r} does not start with {base}")
    elif url[len(base):] not in anchors:
        errors.append(f"{r['alert']}: no heading of deploy/README.md has the anchor #{url[len(base):]}")
firing, quiet = set(), set()
for t in yaml.safe_load(open(tests_file))["tests"]:
    for a in t.get("alert_rule_test", []):
        (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
for r in alerts:
    for seen, what in ((firing, "firing"), (quiet, "not firing")):
        if r["alert"] not in seen:
            errors.append(f"{r['alert']}: alerts_test.yaml never shows it {what}")
if errors:
    sys.exit("FAIL: " + "\nFAIL: ".join(errors))
print(f"ok {len(alerts)} alerts: runbook links resolve, each tested firing and not firing")
PY
else
	skip "python3 with the yaml module is not available; runbook links and test coverage not checked"
fi

step "PrometheusRule (kubernetes/base) is alerts.yaml"
if ! diff -u "$deploy/kubernetes/base/prometheusrule.yaml" <("$deploy/gen-prometheusrule.sh"); then
	fail "deploy/kubernetes/base/prometheusrule.yaml is stale: deploy/gen-prometheusrule.sh > deploy/kubernetes/base/prometheusrule.yaml"
fi
if $have_pyyaml; then
	python3 - "$deploy/prometheus/alerts.yaml" "$deploy/kubernetes/base/prometheusrule.yaml" <<'PY'
import sys, yaml
alerts, rule = (yaml.safe_load(open(f)) for f in sys.argv[1:])
if rule.get("kind") != "PrometheusRule" or rule.get("spec") != alerts:
    sys.exit("FAIL: the PrometheusRule's spec is not deploy/prometheus/alerts.yaml")
PY
fi
echo "ok deploy/kubernetes/base/prometheusrule.yaml"

step "prometheus.yml (compose)"
promtool check config "$deploy/prometheus/prometheus.yml"

# --- Grafana ----------------------------------------------------------------

step "dashboards: JSON"
for f in "$deploy"/grafana/dashboards/*.json; do
	python3 -m json.tool "$f" >/dev/null || fail "$f is not valid JSON"
	echo "ok $f"
done

step "dashboards: every query parses as PromQL"
# Grafana's variables are replaced by values, and each query becomes a
# recording rule that promtool parses.
python3 - "$tmp/dashboard-rules.yaml" "$deploy"/grafana/dashboards/*.json <<'PY'
import json, re, sys
out, files = sys.argv[1], sys.argv[2:]
subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h",
         "${datasource}": "prometheus", "$job": ".*", "$instance": ".*",
         "$organization": ".*"}
# The metrics labelled by organization: every query of them filters by the
# dashboard's Organization variable.
by_org = re.compile(r"(campaign_ingest_(?:requests_total|failures_total|in_flight|duration_seconds_bucket))\{([^}]*)\}")
rules = []
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for f in files:
    d = json.load(open(f))
    var = {v["name"]: v for v in d.get("templating", {}).get("list", [])}.get("organization")
    if not var or not (var.get("multi") and var.get("includeAll")) or "organization" not in json.dumps(var.get("query")):
        sys.exit(f"{f}: no multi-value Organization variable (with All) from the organization label")
    for p in walk(d.get("panels", [])):
        for t in p.get("targets", []):
            e = t.get("expr", "")
            for m in by_org.finditer(e):
                if 'organization=~"$organization"' not in m.group(2):
                    sys.exit(f"{f}: panel {p.get('title')!r}: {m.group(1)} is not filtered by $organization")
            for k, v in subst.items():
                e = e.replace(k, v)
            if "$" in e:
                sys.exit(f"{f}: panel {p.get('title')!r}: unknown variable in {e!r}")
            rules.append({"record": f"dashboard:query{len(rules)}", "expr": e})
json.dump({"groups": [{"name": "dashboards", "rules": rules}]}, open(out, "w"), indent=1)
print(f"{len(rules)} queries")
PY
promtool check rules "$tmp/dashboard-rules.yaml"

# --- metric names -------------------------------------------------------------

step "metricnames.txt is current"
if ! diff -u "$deploy/metricnames.txt" <("$deploy/list-metrics.sh"); then
	fail "deploy/metricnames.txt is stale: deploy/list-metrics.sh > deploy/metricnames.txt"
fi
echo "ok $(wc -l <"$deploy/metricnames.txt") names"

# --- YAML ---------------------------------------------------------------------

step "YAML: every file under deploy/ parses"
if $have_pyyaml; then
	find "$deploy" -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 | sort -z |
		xargs -0 python3 -c '
import sys, yaml
for f in sys.argv[1:]:
    try:
        n = sum(1 for _ in yaml.safe_load_all(open(f)))
    except yaml.YAMLError as e:
        sys.exit(f"FAIL: {f}: {e}")
    print("ok", f, "(%d documents)" % n)
'
else
	skip "python3 with the yaml module is not available; YAML not parsed (kubectl kustomize below still parses the Kubernetes files)"
fi

# --- Compose ------------------------------------------------------------------

step "compose: the demo's files are wired consistently"
# What `docker compose config` cannot see: that the worker's NATS user is
# one of nats.conf's, that its organizations file is mounted, names
# mounted secrets holding the secret of a simulator client limited to that
# organization, and that every organization has a tenant user.
if $have_pyyaml; then
	python3 - "$deploy/compose" <<'PY'
import json, os, re, sys, yaml
d = sys.argv[1]
errors = []
def err(msg): errors.append(msg)
compose = yaml.safe_load(open(os.path.join(d, "compose.yaml")))
svc = compose["services"]
for name in ("nats", "campaign-sim", "ingest-worker", "prometheus", "grafana"):
    if name not in svc:
        err(f"compose.yaml: no service {name}")
# Every host path mounted exists.
mounts = {}  # service -> {container path: host path}
for name, s in svc.items():
    for v in s.get("volumes", []):
        host, _, rest = v.partition(":")
        target = rest.split(":")[0]
        if host.startswith("."):
            path = os.path.normpath(os.path.join(d, host))
            if not os.path.exists(path):
                err(f"compose.yaml: {name} mounts {host}, which does not exist")
            mounts.setdefault(name, {})[target] = path
secret_files = {}
for name, sec in compose.get("secrets", {}).items():
    path = os.path.normpath(os.path.join(d, sec["file"]))
    if not os.path.isfile(path):
        err(f"compose.yaml: secret {name}: {sec['file']} does not exist")
    else:
        secret_files[name] = open(path).read().strip()
def host_file(service, container_path):
    """The host file behind a container path, through a file or directory mount."""
    for target, host in mounts.get(service, {}).items():
        if container_path == target:
            return host
        if container_path.startswith(target.rstrip("/") + "/"):
            return os.path.join(host, container_path[len(target.rstrip("/")) + 1:])
    return None
# NATS users: user/password pairs of nats.conf.
conf = open(os.path.join(d, "nats.conf")).read()
users = dict(re.findall(r"\buser:\s*(\S+)\s+password:\s*(\S+)", conf))
env = svc["ingest-worker"].get("environment", {})
u, pw = env.get("INGEST_NATS_USER"), env.get("INGEST_NATS_PASSWORD")
if users.get(u) != pw:
    err(f"ingest-worker: INGEST_NATS_USER {u!r} with its password is not a user of nats.conf")
for k in ("INGEST_CAMPAIGN_URL", "INGEST_IMS_URL"):
    if not str(env.get(k, "")).startswith("http://campaign-sim:8090"):
        err(f"ingest-worker: {k} is not the simulator (http://campaign-sim:8090)")
# The simulator's preload.
cmd = svc["campaign-sim"].get("command", [])
preload = cmd[cmd.index("-preload") + 1] if "-preload" in cmd else None
clients = {}
if not preload or not host_file("campaign-sim", preload):
    err("campaign-sim: no -preload file mounted from deploy/compose")
else:
    for c in json.load(open(host_file("campaign-sim", preload))).get("clients", []):
        clients[c["id"]] = c
# The organizations file.
orgs_path = env.get("INGEST_ORGS_FILE")
host = host_file("ingest-worker", orgs_path or "")
if not host or not os.path.isfile(host):
    err(f"ingest-worker: INGEST_ORGS_FILE {orgs_path!r} is not a mounted file")
else:
    orgs = (yaml.safe_load(open(host)) or {}).get("organizations") or {}
    if len(orgs) < 2:
        err(f"{host}: {len(orgs)} organizations, the demo runs two")
    worker_secrets = svc["ingest-worker"].get("secrets", [])
    for org, o in orgs.items():
        f = o.get("imsClientSecretFile", "")
        name = f[len("/run/secrets/"):] if f.startswith("/run/secrets/") else None
        if name not in worker_secrets or name not in secret_files:
            err(f"organization {org}: imsClientSecretFile {f!r} is not a secret mounted into ingest-worker")
            continue
        c = clients.get(o.get("imsClientId"))
        if c is None:
            err(f"organization {org}: imsClientId {o.get('imsClientId')!r} is not a client of the simulator's preload")
            continue
        if c["secret"] != secret_files[name]:
            err(f"organization {org}: secret {name} is not client {c['id']}'s secret")
        if c.get("orgs") != [org]:
            err(f"organization {org}: client {c['id']} may use {c.get('orgs')}, want [{org!r}]")
        if o.get("apiKey", c["id"]) != c.get("apiKey", c["id"]):
            err(f"organization {org}: apiKey differs from client {c['id']}'s")
        if org not in users:
            err(f"organization {org}: nats.conf has no tenant user {org}")
        elif f'"ingest.commands.{org}.>"' not in conf or f'"_INBOX_{org}.>"' not in conf:
            err(f"organization {org}: nats.conf does not grant its commands and inbox")
if errors:
    sys.exit("FAIL: " + "\nFAIL: ".join(errors))
print("ok compose.yaml, nats.conf, organizations, secrets, campaign-sim.json")
PY
else
	skip "python3 with the yaml module is not available; the compose files' wiring is not checked"
fi

# --- Kubernetes ---------------------------------------------------------------

step "kustomize: the example overlay renders, with its secrets from files only"
kbuild=()
if command -v kubectl >/dev/null; then
	kbuild=(kubectl kustomize)
elif command -v kustomize >/dev/null; then
	kbuild=(kustomize build)
fi
if [[ ${#kbuild[@]} -gt 0 ]]; then
	# A copy of deploy/kubernetes without any secret file you may keep in
	# overlays/example/secrets/ (they stay out of this check's output).
	mkdir -p "$tmp/k8s"
	tar -C "$deploy" --exclude='kubernetes/overlays/example/secrets/*' -cf - kubernetes | tar -C "$tmp/k8s" -xf -
	example="$tmp/k8s/kubernetes/overlays/example"
	# Without the secret files nothing renders, so nothing is applied: no
	# example secret can replace a real one.
	if "${kbuild[@]}" "$example" >/dev/null 2>"$tmp/kustomize.err"; then
		fail "overlays/example renders without its secret files: it must read every secret from secrets/"
	fi
	grep -q 'secrets/' "$tmp/kustomize.err" || { cat "$tmp/kustomize.err" >&2; fail "overlays/example failed to render for another reason than its secret files"; }
	for f in nats.nk acme-ims globex-ims; do
		printf 'check-placeholder-%s' "$f" >"$example/secrets/$f"
	done
	"${kbuild[@]}" "$example" >"$tmp/rendered.yaml"
	grep -E '^kind: ' "$tmp/rendered.yaml" | sort | uniq -c
	if $have_pyyaml; then
		python3 - "$tmp/rendered.yaml" "$deploy/prometheus/alerts.yaml" <<'PY'
import base64, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
alerts = yaml.safe_load(open(sys.argv[2]))
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
errors = []
def err(m): errors.append(m)
dep = by[("Deployment", "ingest-worker")]
pod = dep["spec"]["template"]["spec"]
ctr = pod["containers"][0]
vols = {v["name"]: v for v in pod["volumes"]}
# Settings and the worker's Secret are generated, with a hash suffix: a
# change rolls the pods.
cm = [e["configMapRef"]["name"] for e in ctr.get("envFrom", []) if "configMapRef" in e]
if len(cm) != 1 or not cm[0].startswith("ingest-worker-") or ("ConfigMap", cm[0]) not in by:
    err(f"the Deployment's settings are not the generated, hashed ConfigMap: {cm}")
settings = by.get(("ConfigMap", cm[0] if cm else ""), {}).get("data", {})
sec = vols.get("secrets", {}).get("secret", {}).get("secretName", "")
if not sec.startswith("ingest-worker-") or ("Secret", sec) not in by:
    err(f"the worker's Secret is not the generated, hashed one: {sec!r}")
# Every Secret comes from a file under secrets/ (check.sh's placeholders).
for (kind, name), d in by.items():
    if kind != "Secret":
        continue
    if "stringData" in d:
        err(f"Secret {name} has stringData: secrets come from files only")
    for k, v in (d.get("data") or {}).items():
        if not base64.b64decode(v).startswith(b"check-placeholder-"):
            err(f"Secret {name}: {k} does not come from a file under secrets/")
# No subPath anywhere: Kubernetes updates mounted files in place only
# without it.
for m in ctr.get("volumeMounts", []):
    if "subPath" in m or "subPathExpr" in m:
        err(f"volume mount {m['name']} uses subPath: its files would never be updated")
# The organizations file: from a mounted ConfigMap, and every secret file
# it names is in a mounted volume.
orgs_file = settings.get("INGEST_ORGS_FILE", "")
mounts = {m["mountPath"].rstrip("/"): m["name"] for m in ctr.get("volumeMounts", [])}
def volume_of(path):
    d = path.rsplit("/", 1)[0]
    return vols.get(mounts.get(d, ""), None), path.rsplit("/", 1)[1]
v, key = volume_of(orgs_file)
if not v or "configMap" not in v:
    err(f"INGEST_ORGS_FILE {orgs_file!r} is not in a mounted ConfigMap")
else:
    ocm = by.get(("ConfigMap", v["configMap"]["name"]))
    if ocm is None or key not in ocm.get("data", {}):
        err(f"the ConfigMap {v['configMap']['name']} has no {key}")
    else:
        orgs = yaml.safe_load(ocm["data"][key])["organizations"]
        for org, o in orgs.items():
            sv, sk = volume_of(o.get("imsClientSecretFile", ""))
            paths = {}
            for src in (sv or {}).get("projected", {}).get("sources", []):
                s = src.get("secret")
                for it in (s or {}).get("items", []):
                    paths[it["path"]] = (s["name"], it["key"])
            if sk not in paths:
                err(f"organization {org}: {o.get('imsClientSecretFile')!r} is not a file of a projected Secret volume")
                continue
            sname, skey = paths[sk]
            if ("Secret", sname) not in by or skey not in by[("Secret", sname)].get("data", {}):
                err(f"organization {org}: Secret {sname} with key {skey} is not in the overlay")
# The alerts, as a PrometheusRule that the operator's Prometheus selects.
rule = by.get(("PrometheusRule", "campaign-ingest"))
if rule is None or rule["spec"] != alerts:
    err("the PrometheusRule campaign-ingest is missing or differs from deploy/prometheus/alerts.yaml")
elif rule["metadata"].get("labels", {}).get("release") != "kube-prometheus-stack":
    err("the PrometheusRule lacks the release label kube-prometheus-stack selects on")
if errors:
    sys.exit("FAIL: " + "\nFAIL: ".join(errors))
print("ok generated ConfigMap and Secrets, secrets from files only, no subPath, organizations wired, PrometheusRule")
PY
	fi
else
	skip "neither kubectl nor kustomize is installed"
fi

# --- NATS ---------------------------------------------------------------------

step "NATS: server configurations"
# nats-server comes from the module cache (it is a dependency of the tests),
# so this needs no network; the first build takes a minute.
if command -v go >/dev/null && go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2 2>"$tmp/go-build.log"; then
	"$tmp/nats-server" -t -c "$deploy/compose/nats.conf"
	if $have_pyyaml; then
		# The Helm chart merges config.merge into the server configuration
		# and config.jetstream.merge into its jetstream block. The server
		# reads JSON, so rebuild that part of the configuration from the
		# values and check it.
		python3 - "$deploy/kubernetes/nats-values.yaml" "$tmp" >"$tmp/helm-nats.conf" <<'PY'
import json, sys, yaml
v = yaml.safe_load(open(sys.argv[1]))["config"]
js = v["jetstream"]
assert js["enabled"] and js["fileStore"]["enabled"], "JetStream file storage must be on"
assert v["cluster"]["enabled"] and v["cluster"]["replicas"] >= 3, "a three-node cluster is expected"
assert js.get("merge", {}).get("sync_interval") == "always", "sync_interval: always is expected"
conf = {"jetstream": {"store_dir": sys.argv[2] + "/js", **js.get("merge", {})}}
conf.update(v.get("merge", {}))
print(json.dumps(conf, indent=1))
PY
		"$tmp/nats-server" -t -c "$tmp/helm-nats.conf"
		echo " (deploy/kubernetes/nats-values.yaml)"
	else
		skip "python3 with the yaml module is not available; nats-values.yaml not checked"
	fi
else
	skip "could not build nats-server from the module cache: $(tail -n1 "$tmp/go-build.log" 2>/dev/null)"
fi

step "NATS: versions pinned to go.mod's nats-server"
# The tests embed the nats-server of go.mod; the demo and the Helm values
# run the same release (deploy/README.md, "Pinned versions").
nats_version=$(awk '$1 == "github.com/nats-io/nats-server/v2" { sub(/^v/, "", $2); print $2 }' go.mod)
[[ -n $nats_version ]] || fail "go.mod requires no github.com/nats-io/nats-server/v2"
want_image="nats:$nats_version-alpine"
compose_image=$(sed -nE 's/^[[:space:]]+image:[[:space:]]+(nats:[^[:space:]]+)[[:space:]]*$/\1/p' "$deploy/compose/compose.yaml")
[[ $compose_image == "$want_image" ]] ||
	fail "deploy/compose/compose.yaml runs ${compose_image:-no nats image}, go.mod has nats-server $nats_version: use $want_image"
if $have_pyyaml; then
	python3 - "$deploy/kubernetes/nats-values.yaml" "$want_image" <<'PY'
import sys, yaml
img = yaml.safe_load(open(sys.argv[1]))["container"]["image"]
got = f'{img["repository"]}:{img["tag"]}'
if got != sys.argv[2]:
    sys.exit(f"FAIL: deploy/kubernetes/nats-values.yaml runs {got}, want {sys.argv[2]} (go.mod)")
PY
fi
chart_values=$(sed -nE 's/.*nats\/nats --version ([^[:space:]]+).*/\1/p' "$deploy/kubernetes/nats-values.yaml")
chart_readme=$(sed -nE 's/.*nats\/nats --version ([^[:space:]]+).*/\1/p' "$deploy/README.md" | sort -u)
[[ -n $chart_values && $chart_values == "$chart_readme" ]] ||
	fail "the NATS chart version differs: nats-values.yaml '${chart_values}', deploy/README.md '${chart_readme//$'\n'/ }'"
[[ ${chart_values%.*} == "${nats_version%.*}" ]] ||
	fail "NATS chart $chart_values does not follow nats-server $nats_version (the chart's major.minor is the server's)"
echo "ok nats-server $nats_version, image $want_image, chart $chart_values"

# --- Go tests -------------------------------------------------------------------

step "Go tests of the kit (go test ./deploy/)"
# The metric names against the worker's registry, the tenants' NATS
# permissions on a server started from compose/nats.conf, and (with the
# configuration rebuilt from nats-values.yaml above) that the Kubernetes
# users have the same permissions.
if ! command -v go >/dev/null; then
	skip "go is not installed: the Go tests of the kit did not run"
elif [[ -s $tmp/helm-nats.conf ]]; then
	DEPLOY_NATS_HELM_CONF="$tmp/helm-nats.conf" go test -count=1 ./deploy/
else
	skip "nats-values.yaml was not rebuilt: its permissions are not compared with compose/nats.conf"
	go test -count=1 ./deploy/
fi

# --- a live scrape --------------------------------------------------------------

if [[ $# -gt 0 ]]; then
	step "promtool check metrics < $1"
	promtool check metrics <"$1"
fi

printf '\nall checks passed\n'
