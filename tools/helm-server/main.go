// helm-server changes Helm releases on behalf of the operator: install, upgrade, rollback and
// uninstall with helm.sh/helm/v4/pkg/action, as the helm CLI of the same version does with the
// flags the operator used to pass, so the releases stay real Helm releases (the "secret"
// storage driver). One long-lived process instead of one helm process per action: the kube
// client, the discovery results and the REST mapper are built once and reused.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout, in
// the order they finish. Requests for different releases run concurrently; requests for the
// same release one after the other. The process ends when stdin closes or its parent dies.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"

	"helm.sh/helm/v4/pkg/kube"
)

const (
	operatorLabel = "enclave.dev/managed-by" // on every release record, as --labels did
	operatorValue = "enclave-operator"
)

type request struct {
	ID        int64           `json:"id"`
	Verb      string          `json:"verb"` // install, upgrade, rollback, uninstall
	Release   string          `json:"release"`
	Namespace string          `json:"namespace"`
	Chart     string          `json:"chart,omitempty"`    // install, upgrade: a chart directory
	Values    json.RawMessage `json:"values,omitempty"`   // install, upgrade
	Revision  int             `json:"revision,omitempty"` // rollback
}

type response struct {
	ID       int64  `json:"id"`
	OK       bool   `json:"ok"`
	Revision int    `json:"revision,omitempty"` // install, upgrade: the new revision
	Error    string `json:"error,omitempty"`    // helm's message, as its CLI prints it
}

func main() {
	// Die with the operator even if stdin stays open somewhere. --parent names the operator's
	// pid: if it is gone already (before the prctl), the parent is someone else. Not "the
	// parent is pid 1": in a container the operator itself is pid 1.
	parent := flag.Int("parent", 0, "the operator's pid; exit at once if it is not the parent")
	flag.Parse()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
	if *parent != 0 && os.Getppid() != *parent {
		fmt.Fprintf(os.Stderr, "helm-server: parent %d is gone\n", *parent)
		os.Exit(1)
	}
	// The field manager helm's CLI writes objects as, so that ownership stays the same.
	kube.ManagedFieldsManager = "helm"
	c, err := newCluster()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helm-server: %v\n", err)
		os.Exit(1)
	}
	serve(c, bufio.NewReader(os.Stdin), os.Stdout)
}

func serve(c *cluster, in *bufio.Reader, out *os.File) {
	var writeMu sync.Mutex
	enc := json.NewEncoder(out)
	reply := func(r response) {
		writeMu.Lock()
		defer writeMu.Unlock()
		if err := enc.Encode(r); err != nil {
			os.Exit(1) // nobody is reading any more
		}
	}
	locks := releaseLocks{held: map[string]*sync.Mutex{}}
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				reply(response{ID: req.ID, Error: "Error: bad request: " + jerr.Error()})
			} else {
				go handle(c, &req, &locks, reply)
			}
		}
		if err != nil { // EOF: the operator is gone or done
			os.Exit(0)
		}
	}
}

func handle(c *cluster, req *request, locks *releaseLocks, reply func(response)) {
	defer func() {
		if p := recover(); p != nil {
			reply(response{ID: req.ID, Error: fmt.Sprintf("Error: helm-server: %v", p)})
		}
	}()
	unlock := locks.lock(req.Namespace + "/" + req.Release)
	defer unlock()
	rev, err := c.run(req)
	if err != nil {
		reply(response{ID: req.ID, Error: err.Error()})
		return
	}
	reply(response{ID: req.ID, OK: true, Revision: rev})
}

// releaseLocks keeps one action per release at a time, as one helm process per release did.
type releaseLocks struct {
	mu   sync.Mutex
	held map[string]*sync.Mutex
}

func (l *releaseLocks) lock(key string) func() {
	l.mu.Lock()
	m, ok := l.held[key]
	if !ok {
		m = &sync.Mutex{}
		l.held[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}
