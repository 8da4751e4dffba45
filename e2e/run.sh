#!/usr/bin/env bash
# End-to-end test of rotator on a throwaway kind cluster (needs Docker, kind, kubectl).
# What it covers and how to tune it: e2e/README.md.
#
#   e2e/run.sh                  # create cluster, test, delete cluster
#   KEEP_CLUSTER=1 e2e/run.sh   # leave the cluster up for inspection
#   SCENARIOS=0 e2e/run.sh      # skip step 9, the suite's shared scenarios (needs the dev venv)
set -Eeuo pipefail
IFS=$'\n\t'

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_NAME="${CLUSTER_NAME:-rotator-e2e}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"
IMAGE_REPO="${IMAGE_REPO:-rotator}"
IMAGE_TAG="${IMAGE_TAG:-e2e}"
OPENBAO_IMAGE="${OPENBAO_IMAGE:-openbao/openbao:2.7.2}"
DEMO_IMAGE="${DEMO_IMAGE:-busybox:1.37}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
SCENARIOS="${SCENARIOS:-1}"
PYTHON="${PYTHON:-${REPO_ROOT}/.venv/bin/python}"

IMAGE="${IMAGE_REPO}:${IMAGE_TAG}"
CONTEXT="kind-${CLUSTER_NAME}"
OPERATOR_NS=rotator-system
SA="system:serviceaccount:${OPERATOR_NS}:rotator"
NS=shop
POLICY=orders-db
DEMO=orders-api
SECRET=orders-db-credentials
VAULT_TOKEN=root # the dev server's root token; fine for a throwaway cluster only
VAULT_PATH=shop/orders-db

CLUSTER_CREATED=0
WORKDIR=""

log() { printf '[e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}
pass() { log "ok: $*"; }

k() { kubectl --context "${CONTEXT}" "$@"; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is required on PATH"
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  else
    shasum -a 256 | cut -d' ' -f1
  fi
}

# wait_for DESCRIPTION COMMAND...: retry COMMAND every 2s until it succeeds or WAIT_SECONDS pass.
wait_for() {
  local what="$1"
  shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${WAIT_SECONDS}s waiting for: ${what}"
    fi
    sleep 2
  done
  pass "${what}"
}

diagnostics() {
  log "---- diagnostics ----"
  k -n "${OPERATOR_NS}" get pods -o wide || true
  k -n "${OPERATOR_NS}" logs deploy/rotator --tail=200 || true
  k -n "${NS}" get rotationpolicy "${POLICY}" -o yaml || true
  k -n "${NS}" get deploy,rs,pods -o wide || true
  k -n "${NS}" get events --sort-by=.lastTimestamp || true
  k -n vault logs deploy/vault --tail=50 || true
}

cleanup() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)) && ((CLUSTER_CREATED == 1)); then
    diagnostics
  fi
  if [[ -n "${WORKDIR}" ]]; then
    rm -rf "${WORKDIR}"
  fi
  if ((CLUSTER_CREATED == 1)); then
    if [[ "${KEEP_CLUSTER}" == 1 ]]; then
      log "keeping cluster ${CLUSTER_NAME} (kubectl --context ${CONTEXT}); delete it with: kind delete cluster --name ${CLUSTER_NAME}"
    else
      log "deleting cluster ${CLUSTER_NAME}"
      kind delete cluster --name "${CLUSTER_NAME}" >/dev/null 2>&1 || true
    fi
  fi
  if ((rc == 0)); then
    log "PASSED"
  else
    log "FAILED (exit ${rc})"
  fi
  exit "${rc}"
}
trap cleanup EXIT

# --- policy status helpers -------------------------------------------------------------------

rp_field() { k -n "${NS}" get rotationpolicy "${POLICY}" -o "jsonpath=$1"; }

# "id result version" per history entry, one per line.
history_lines() {
  rp_field '{range .status.history[*]}{.id}{" "}{.result}{" "}{.version}{"\n"}{end}'
}

# Succeeds when the policy is Idle and its history holds a Succeeded rotation not in $1 (ids).
new_success_since() {
  local seen="$1" phase id result version
  phase="$(rp_field '{.status.phase}')"
  [[ "${phase}" == Idle ]] || return 1
  while IFS=' ' read -r id result version; do
    [[ -n "${id}" ]] || continue
    if [[ "${result}" == Succeeded ]] && ! grep -qxF "${id}" <<<"${seen}"; then
      return 0
    fi
  done < <(history_lines)
  return 1
}

succeeded_ids() {
  history_lines | awk '$2 == "Succeeded" { print $1 }'
}

# The id and version of the newest Succeeded history entry not in $1.
newest_success() {
  local seen="$1" id result version
  while IFS=' ' read -r id result version; do
    if [[ "${result}" == Succeeded ]] && ! grep -qxF "${id}" <<<"${seen}"; then
      printf '%s %s\n' "${id}" "${version}"
      return 0
    fi
  done < <(history_lines)
  return 1
}

secret_hash() {
  k -n "${NS}" get secret "${SECRET}" -o 'jsonpath={.data.password}' | base64 --decode | sha256
}

# Prints the sha256 of the value stored in Vault at version $1 (empty when unreadable).
vault_value_hash() {
  # shellcheck disable=SC2016 # expanded by the shell inside the pod, on purpose
  k -n vault exec deploy/vault -- env BAO_ADDR=http://127.0.0.1:8200 BAO_TOKEN="${VAULT_TOKEN}" \
    sh -c 'v="$(bao kv get -mount=secret -version="$1" -field=value "$2" 2>/dev/null)" && [ -n "$v" ] && printf %s "$v" | sha256sum | cut -d" " -f1' \
    _ "$1" "${VAULT_PATH}" || true
}

template_rotation_id() {
  k -n "${NS}" get deploy "${DEMO}" -o 'jsonpath={.spec.template.metadata.annotations.rotator\.dev/rotation-id}'
}

# Succeeds when every pod of the demo carries rotation id $1 (old ones have terminated).
all_pods_on() {
  local want="$1" ids
  ids="$(k -n "${NS}" get pods -l "app.kubernetes.io/name=${DEMO}" \
    -o 'jsonpath={range .items[*]}{.metadata.annotations.rotator\.dev/rotation-id}{"\n"}{end}')"
  [[ -n "${ids}" ]] || return 1
  ! grep -vxF "${want}" <<<"${ids}" >/dev/null
}

# The demo pods hold the Secret's current value (compared by hash; the value is never printed).
pods_hold_secret_value() {
  local want pod got
  want="$(secret_hash)"
  for pod in $(k -n "${NS}" get pods -l "app.kubernetes.io/name=${DEMO}" -o 'jsonpath={.items[*].metadata.name}' | tr ' ' '\n'); do
    # shellcheck disable=SC2016 # $DB_PASSWORD is the pod's, expanded inside the pod
    got="$(k -n "${NS}" exec "${pod}" -- sh -c 'printf %s "$DB_PASSWORD" | sha256sum' | cut -d' ' -f1)"
    [[ "${got}" == "${want}" ]] || die "pod ${pod} runs with a credential that is not the Secret's current value"
  done
}

# check_rotation SEEN_IDS LABEL: after a rotation finished, check the Secret, Vault and the demo.
check_rotation() {
  local seen="$1" label="$2" id="" version="" hash
  IFS=' ' read -r id version < <(newest_success "${seen}") || true
  [[ -n "${id}" ]] || die "${label}: no new Succeeded history entry"
  log "${label}: rotation ${id} succeeded at store version ${version}"

  [[ "$(rp_field '{.status.currentVersion}')" == "${version}" ]] ||
    die "${label}: status.currentVersion is not the rotated version ${version}"
  [[ "$(k -n "${NS}" get secret "${SECRET}" -o 'jsonpath={.metadata.annotations.rotator\.dev/rotation-id}')" == "${id}" ]] ||
    die "${label}: Secret ${SECRET} is not annotated with rotation ${id}"
  [[ "$(k -n "${NS}" get secret "${SECRET}" -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}')" == rotator ]] ||
    die "${label}: Secret ${SECRET} is not labelled as managed by rotator"
  # The example's deletionPolicy is Retain: the Secret outlives its policy, so no owner.
  [[ -z "$(k -n "${NS}" get secret "${SECRET}" -o 'jsonpath={.metadata.ownerReferences}')" ]] ||
    die "${label}: Secret ${SECRET} has an owner although its policy says deletionPolicy: Retain"
  [[ -z "$(k -n "${NS}" get secret "${SECRET}" -o 'jsonpath={.data.password\.previous}')" ]] ||
    die "${label}: previousKey still present after revoke"

  hash="$(secret_hash)"
  [[ "$(vault_value_hash "${version}")" == "${hash}" ]] ||
    die "${label}: the Secret does not hold Vault version ${version}"
  pass "${label}: Secret ${SECRET} holds Vault version ${version}, labelled and annotated"

  [[ "$(template_rotation_id)" == "${id}" ]] || die "${label}: ${DEMO} pod template not restarted for ${id}"
  k -n "${NS}" rollout status "deploy/${DEMO}" --timeout="${WAIT_SECONDS}s" >/dev/null
  wait_for "${label}: every ${DEMO} pod started for rotation ${id}" all_pods_on "${id}"
  pods_hold_secret_value
  pass "${label}: ${DEMO} rolled and its pods hold the new credential"
  printf '%s\n' "${hash}" >"${WORKDIR}/hash-${label}"
}

# expect_rejected DESCRIPTION EXTRA_KUBECTL_ARGS... < manifest: server-side dry run must fail.
expect_rejected() {
  local what="$1" out
  shift
  if out="$(k apply --dry-run=server "$@" -f - 2>&1)"; then
    die "admission accepted ${what}"
  fi
  grep -qi 'invalid\|unknown field\|strict decoding' <<<"${out}" || die "unexpected rejection of ${what}: ${out}"
  pass "admission rejects ${what}"
}

# policy_with SPEC_TAIL: a minimal valid RotationPolicy whose spec ends with SPEC_TAIL (YAML).
policy_with() {
  cat <<EOF
apiVersion: rotator.dev/v1alpha1
kind: RotationPolicy
metadata: {name: admission-probe, namespace: ${NS}}
spec:
  secret: {name: admission-probe}
  storeRef: {kind: RotationStore, name: vault}
  path: probe
$1
EOF
}

# --- 0. preflight ----------------------------------------------------------------------------

for tool in docker kind kubectl; do need "${tool}"; done
if [[ "${SCENARIOS}" == 1 ]]; then
  "${PYTHON}" -c 'import pytest, hvac' >/dev/null 2>&1 ||
    die "step 9 runs the test suite's scenarios with ${PYTHON} (\`make lint\` bootstraps .venv), or set SCENARIOS=0 to skip them"
fi
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable"
existing_clusters="$(kind get clusters 2>/dev/null)"
if grep -qxF "${CLUSTER_NAME}" <<<"${existing_clusters}"; then
  die "kind cluster ${CLUSTER_NAME} already exists: delete it or set CLUSTER_NAME"
fi
# Kustomize refuses absolute paths to other roots, so the e2e overlays live inside the repo.
WORKDIR="$(mktemp -d "${REPO_ROOT}/e2e/.work.XXXXXX")"

# --- 1. cluster and images -------------------------------------------------------------------

log "creating kind cluster ${CLUSTER_NAME}"
CLUSTER_CREATED=1
kind_args=(create cluster --name "${CLUSTER_NAME}" --wait 180s)
if [[ -n "${KIND_NODE_IMAGE}" ]]; then kind_args+=(--image "${KIND_NODE_IMAGE}"); fi
kind "${kind_args[@]}"

log "building ${IMAGE}"
docker build -t "${IMAGE}" "${REPO_ROOT}"
for image in "${OPENBAO_IMAGE}" "${DEMO_IMAGE}"; do
  docker image inspect "${image}" >/dev/null 2>&1 || docker pull "${image}" || true
done
kind load docker-image "${IMAGE}" --name "${CLUSTER_NAME}"
# Third-party images are preloaded to spare the node a registry pull; if loading a multi-platform
# image fails (a known kind + containerd-image-store issue), the node pulls it instead.
for image in "${OPENBAO_IMAGE}" "${DEMO_IMAGE}"; do
  kind load docker-image "${image}" --name "${CLUSTER_NAME}" || log "warning: could not preload ${image}; the node will pull it"
done

# --- 2. OpenBao (the Vault API) in dev mode --------------------------------------------------

log "installing OpenBao (${OPENBAO_IMAGE}) in dev mode"
k apply --server-side --field-manager=rotator-e2e -f - <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: vault}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: vault, namespace: vault}
spec:
  replicas: 1
  selector: {matchLabels: {app: vault}}
  template:
    metadata: {labels: {app: vault}}
    spec:
      containers:
        - name: openbao
          image: ${OPENBAO_IMAGE}
          imagePullPolicy: IfNotPresent
          args: ["server", "-dev"]
          env:
            - {name: BAO_DEV_ROOT_TOKEN_ID, value: "${VAULT_TOKEN}"}
            - {name: BAO_DEV_LISTEN_ADDRESS, value: "0.0.0.0:8200"}
            - {name: SKIP_SETCAP, value: "true"}
          ports: [{name: http, containerPort: 8200}]
          readinessProbe:
            httpGet: {path: /v1/sys/health, port: http}
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata: {name: vault, namespace: vault}
spec:
  selector: {app: vault}
  ports: [{name: http, port: 8200, targetPort: http}]
EOF
k -n vault rollout status deploy/vault --timeout="${WAIT_SECONDS}s"
# (Output captured before grep -q: with pipefail, grep closing the pipe early would fail it.)
mounts="$(k -n vault exec deploy/vault -- env BAO_ADDR=http://127.0.0.1:8200 BAO_TOKEN="${VAULT_TOKEN}" \
  bao secrets list)"
grep -q '^secret/' <<<"${mounts}" || die "OpenBao dev server has no KV mount at secret/"
pass "OpenBao is up with KV v2 at secret/"

# --- 3. the operator -------------------------------------------------------------------------

mkdir -p "${WORKDIR}/operator" "${WORKDIR}/examples"
cat >"${WORKDIR}/operator/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../manifests
images:
  - name: rotator
    newName: ${IMAGE_REPO}
    newTag: ${IMAGE_TAG}
patches:
  - target: {kind: Deployment, name: rotator}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: Never
EOF
log "installing rotator (server-side apply)"
kubectl kustomize --load-restrictor LoadRestrictionsNone "${WORKDIR}/operator" |
  k apply --server-side --field-manager=rotator-e2e -f -
k wait --for=condition=Established crd/rotationpolicies.rotator.dev --timeout="${WAIT_SECONDS}s"
k -n "${OPERATOR_NS}" rollout status deploy/rotator --timeout="${WAIT_SECONDS}s"
pass "operator running (restricted Pod Security admission let it in)"

# --- 4. RBAC as the API server enforces it ---------------------------------------------------

can() { k auth can-i "$@" --as="${SA}" >/dev/null 2>&1; }
for allowed in \
  "get secrets -n ${NS}" "create secrets -n ${NS}" "update secrets -n ${NS}" \
  "watch secrets --all-namespaces" "patch deployments.apps -n ${NS}" "list deployments.apps -n ${NS}" \
  "watch deployments.apps --all-namespaces" \
  "create serviceaccounts --subresource=token -n ${NS}" \
  "patch rotationpolicies.rotator.dev --subresource=status -n ${NS}" \
  "create events -n ${NS}" "watch rotationpolicies.rotator.dev --all-namespaces"; do
  IFS=' ' read -r -a words <<<"${allowed}"
  can "${words[@]}" || die "RBAC: the operator cannot ${allowed}"
done
# list/watch on Secrets is granted: the operator watches the Secrets it wrote, always with the
# label selector app.kubernetes.io/managed-by=rotator, which RBAC cannot express (nor can-i check).
for denied in \
  "delete secrets -n ${NS}" \
  "delete deployments.apps -n ${NS}" "create pods -n ${NS}" "create pods --subresource=exec -n ${NS}" \
  "update clusterroles.rbac.authorization.k8s.io"; do
  IFS=' ' read -r -a words <<<"${denied}"
  if can "${words[@]}"; then die "RBAC: the operator may ${denied}, which it must not"; fi
done
pass "RBAC grants what the operator needs and no delete, pod creation or exec"

# --- 5. admission: the CRD schema and CEL rules in the real API server -----------------------

k create namespace "${NS}" --dry-run=client -o yaml | k apply --server-side --field-manager=rotator-e2e -f -
policy_with '  credential: {password: {length: 8}}' | expect_rejected "a password shorter than 16"
policy_with '  credential: {password: {}}
  schedule: {interval: 720h, cron: "0 3 * * SUN"}' | expect_rejected "interval together with cron (CEL)"
policy_with '  credential: {password: {}}
  bogusField: true' | expect_rejected "an unknown field (strict field validation)" --validate=strict
policy_with '  credential: {password: {}}' | k apply --dry-run=server -f - >/dev/null ||
  die "admission rejected a minimal valid policy"
pass "admission accepts a minimal valid policy"

# --- 6. the example: first rotation ----------------------------------------------------------

cat >"${WORKDIR}/examples/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../manifests/examples
images:
  - name: busybox
    newName: ${DEMO_IMAGE%:*}
    newTag: "${DEMO_IMAGE##*:}"
patches:
  # The store's token Secret ships a placeholder: the dev server's root token instead.
  - target: {version: v1, kind: Secret, name: vault-token}
    patch: |-
      - op: replace
        path: /stringData/token
        value: ${VAULT_TOKEN}
  # Seconds instead of minutes, so a rotation completes quickly.
  - target: {group: rotator.dev, kind: RotationPolicy, name: ${POLICY}}
    patch: |-
      - op: replace
        path: /spec/revoke/gracePeriod
        value: 10s
      - op: replace
        path: /spec/verify/timeout
        value: 4m
EOF
log "applying the Vault example (${NS}/${POLICY} and ${NS}/${DEMO})"
kubectl kustomize "${WORKDIR}/examples" | k apply --server-side --field-manager=rotator-e2e -f -
k -n "${NS}" get rotationpolicy "${POLICY}" >/dev/null

# A policy that was never rotated rotates at once (trigger "never rotated").
wait_for "first rotation of ${POLICY} succeeded" new_success_since ""
check_rotation "" first
first_ids="$(succeeded_ids)"

# --- 7. forced rotation ----------------------------------------------------------------------

stamp="$(date +%s)"
log "forcing a rotation: rotator.dev/force-rotate=${stamp}"
k -n "${NS}" annotate rotationpolicy "${POLICY}" rotator.dev/force-rotate="${stamp}" --overwrite
forced_handled() { [[ "$(rp_field '{.status.lastHandledForceRotate}')" == "${stamp}" ]]; }
wait_for "force-rotate ${stamp} handled" forced_handled
wait_for "forced rotation of ${POLICY} succeeded" new_success_since "${first_ids}"
check_rotation "${first_ids}" forced
[[ "$(cat "${WORKDIR}/hash-first")" != "$(cat "${WORKDIR}/hash-forced")" ]] ||
  die "the forced rotation did not change the credential"
pass "the forced rotation replaced the credential"

# Step 6: the first rotation's version is revoked (destroyed in KV v2).
first_version=""
IFS=' ' read -r _ _ first_version < <(history_lines | grep -F "$(head -n1 <<<"${first_ids}")") || true
[[ -n "${first_version}" ]] || die "the first rotation is missing from the history"
if [[ -n "$(vault_value_hash "${first_version}")" ]]; then
  die "Vault version ${first_version} is still readable after revoke"
fi
pass "the previous credential (Vault version ${first_version}) is revoked"

# --- 8. observability ------------------------------------------------------------------------

metrics="$(k get --raw "/api/v1/namespaces/${OPERATOR_NS}/services/rotator-metrics:metrics/proxy/metrics")"
# One series per trigger reason: sum them.
succeeded="$(awk -v p="policy=\"${POLICY}\"" \
  '/^rotator_rotations_total\{/ && index($0, p) && index($0, "result=\"succeeded\"") { n += $NF } END { print n + 0 }' \
  <<<"${metrics}")"
awk -v n="${succeeded}" 'BEGIN { exit !(n >= 2) }' || die "metrics count ${succeeded} successful rotations, want 2"
pass "metrics count the successful rotations"
events="$(k -n "${NS}" get events --field-selector "involvedObject.name=${POLICY}" -o name)"
[[ -n "${events}" ]] || die "no Events were posted for ${POLICY}"
pass "Events posted for ${POLICY}"
operator_logs="$(k -n "${OPERATOR_NS}" logs deploy/rotator)"
if grep -q 'Forbidden' <<<"${operator_logs}"; then
  log "warning: the operator logged Forbidden responses (RBAC gap?):"
  grep 'Forbidden' <<<"${operator_logs}" | tail -n 5 >&2
fi

# --- 9. the suite's scenarios on this cluster ------------------------------------------------
# tests/integration/test_rotation.py's scenarios (rotation, dual window, force semantics, the
# rollback on a failed rollout, a force during a rotation), the same functions the suite runs on
# the emulator and on the real control plane, with its "kubeconfig" backend
# (tests/fixtures/kube_backends.py): each in a namespace of its own, the operator run by the
# test as rotator-system/rotator (a TokenRequest token; the install's RBAC), OpenBao on the
# host, consumers on the kind node's kubelet running DEMO_IMAGE with a readiness probe for the
# failing-readiness fault. The in-cluster operator is scaled to 0 first: two operators acting on
# one policy would test neither.

if [[ "${SCENARIOS}" == 1 ]]; then
  log "step 9: the suite's scenarios (tests/integration/test_rotation.py -k kubeconfig)"
  k -n "${OPERATOR_NS}" scale deploy/rotator --replicas=0
  operator_gone() { [[ -z "$(k -n "${OPERATOR_NS}" get pods -l app.kubernetes.io/name=rotator -o name)" ]]; }
  wait_for "the in-cluster operator scaled to 0" operator_gone
  kind get kubeconfig --name "${CLUSTER_NAME}" >"${WORKDIR}/kubeconfig"
  chmod 600 "${WORKDIR}/kubeconfig"
  (
    cd "${REPO_ROOT}"
    ROTATOR_TEST_KUBECONFIG="${WORKDIR}/kubeconfig" ROTATOR_TEST_CONSUMER_IMAGE="${DEMO_IMAGE}" \
      PYTHONPATH="${REPO_ROOT}/operator:${REPO_ROOT}" \
      "${PYTHON}" -m pytest -q -p no:cacheprovider -p no:xdist tests/integration/test_rotation.py -k kubeconfig
  ) || die "the suite's scenarios failed on kind"
  pass "the suite's rotation scenarios passed on kind"
else
  log "step 9 skipped (SCENARIOS=0): the suite's scenarios did not run on this cluster"
fi
