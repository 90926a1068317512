#!/usr/bin/env bash
# Builds the dev cluster's binaries from Go modules into a cache outside the clone:
#   ${ENCLAVE_CACHE:-~/.cache/enclave-operator}/bin/<versions>/
# A binary already there is kept; changing a pinned version changes the directory.
# Prints the directory on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$root/src/enclave_operator/devcluster/versions.env"
cache=${ENCLAVE_CACHE:-$HOME/.cache/enclave-operator}
tag="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
out="$cache/bin/$tag"
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

step() { printf '==> %s\n' "$*" >&2; }
have() { [ -x "$out/$1" ]; }
build() { # name, seconds counter
  local name=$1; shift
  if have "$name"; then step "$name: cached"; return; fi
  step "$name: building ($*)"
  local t0=$SECONDS
  "$@"
  step "$name: built in $((SECONDS - t0))s"
}

kube_ldflags() {
  local v=$KUBERNETES_VERSION minor
  minor=${v#v1.}; minor=${minor%%.*}
  local x=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "-s -w$x"
}

# kube wrapper must match the pinned version (scripts/gen-kube-wrapper.sh regenerates it).
grep -q "k8s.io/kubernetes $KUBERNETES_VERSION" "$root/tools/kube/go.mod" || {
  echo "tools/kube/go.mod is not for $KUBERNETES_VERSION: run scripts/gen-kube-wrapper.sh" >&2; exit 1; }
grep -q "github.com/coredns/coredns $COREDNS_VERSION" "$root/tools/coredns/go.mod" || {
  echo "tools/coredns/go.mod is not for $COREDNS_VERSION: run 'go get github.com/coredns/coredns@$COREDNS_VERSION && go mod tidy' there" >&2; exit 1; }
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$root/tools/etcd/go.mod" || {
  echo "tools/etcd/go.mod is not for $ETCD_VERSION: run 'go get -tool go.etcd.io/etcd/server/v3@$ETCD_VERSION' there" >&2; exit 1; }

build etcd sh -c "cd '$root/tools/etcd' && go build -trimpath -ldflags='-s -w' -o '$out/etcd' go.etcd.io/etcd/server/v3"
ldf=$(kube_ldflags)
for t in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
  build "$t" sh -c "cd '$root/tools/kube' && go build -trimpath -ldflags='$ldf' -o '$out/$t' k8s.io/kubernetes/cmd/$t"
done
# The real node's DNS (only the plugins it uses, tools/coredns) and pod sandbox (tools/pause).
build "coredns-$COREDNS_VERSION" sh -c "cd '$root/tools/coredns' && go build -trimpath -ldflags='-s -w' -o '$out/coredns-$COREDNS_VERSION' ."
ln -sfn "coredns-$COREDNS_VERSION" "$out/coredns"
build pause sh -c "cd '$root/tools/pause' && go build -trimpath -ldflags='-s -w' -o '$out/pause' ."
build kwok sh -c "GOBIN='$out' go install -trimpath -ldflags='-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}' sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
build helm sh -c "GOBIN='$out' go install -trimpath -ldflags='-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION' helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
# The operator's helm server (tools/helm-server, helm's library at HELM_VERSION), in a directory
# named by a hash of its source, so that a change of the source builds it again (the file keeps
# its name, which ps and the tests look for); helm-server points at the last one built.
grep -q "helm.sh/helm/v4 $HELM_VERSION" "$root/tools/helm-server/go.mod" || {
  echo "tools/helm-server/go.mod is not for $HELM_VERSION: run 'go get helm.sh/helm/v4@$HELM_VERSION && go mod tidy' there" >&2; exit 1; }
hs="helm-server.$(cd "$root/tools/helm-server" && LC_ALL=C ls -- *.go go.mod go.sum | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)/helm-server"
build "$hs" sh -c "cd '$root/tools/helm-server' && go build -trimpath -ldflags='-s -w' -o '$out/$hs' ."
ln -sfn "$hs" "$out/helm-server"
# kwok ships its default stages as YAML in its module; kwokctl embeds them, plain kwok needs a file.
if [ ! -s "$out/kwok-stages.yaml" ]; then
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  s="$kdir/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$s/$f"
  done > "$out/kwok-stages.yaml.tmp"
  mv "$out/kwok-stages.yaml.tmp" "$out/kwok-stages.yaml"
  step "kwok stages written"
fi
step "all binaries in $out"
echo "$out"
