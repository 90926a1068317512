package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/loader"
	valuesloader "helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// What `helm install|upgrade|rollback|uninstall` use when their flags are left out; the
// operator used to give only those in flagsFor below.
const (
	actionTimeout      = 300 * time.Second // --timeout: hooks only, as nothing waits
	defaultMaxHistory  = 10                // --history-max, or $HELM_MAX_HISTORY
	statusWorkers      = 8                 // the CLI's status-compute workers
	deletionPropagaton = "background"      // uninstall --cascade
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil)).Handler()

func maxHistory() int {
	if n, err := strconv.Atoi(os.Getenv("HELM_MAX_HISTORY")); err == nil {
		return n
	}
	return defaultMaxHistory
}

// configuration is what `helm --namespace ns` sets up with the "secret" driver, built on
// the shared cluster: its clientset, discovery, mapper and capabilities.
func (c *cluster) configuration(namespace string) (*action.Configuration, error) {
	caps, err := c.capabilities()
	if err != nil {
		return nil, fmt.Errorf("kubernetes cluster unreachable: %w", err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(quiet))
	g := getter{c: c, namespace: namespace}
	kc := kube.New(g)
	kc.Namespace = namespace
	kc.SetLogger(quiet)
	secrets := driver.NewSecrets(c.clientset.CoreV1().Secrets(namespace))
	secrets.SetLogger(quiet)
	cfg.RESTClientGetter = g
	cfg.KubeClient = kc
	cfg.Releases = storage.Init(secrets)
	cfg.Capabilities = caps
	cfg.HookOutputFunc = func(_, _, _ string) io.Writer { return io.Discard }
	return cfg, nil
}

// loadChart does what install and upgrade do with a chart directory before acting.
func loadChart(path string) (chart.Charter, error) {
	ch, err := loader.Load(path)
	if err != nil {
		return nil, err
	}
	ac, err := chart.NewAccessor(ch)
	if err != nil {
		return nil, err
	}
	if t := ac.MetadataAsMap()["Type"]; t != "" && t != "application" && t != nil {
		return nil, fmt.Errorf("%s charts are not installable", t)
	}
	if req := ac.MetaDependencies(); len(req) > 0 {
		if err := action.CheckDependencies(ch, req); err != nil {
			return nil, fmt.Errorf("an error occurred while checking for chart dependencies. You may need to run 'helm dependency build' to fetch missing dependencies: %w", err)
		}
	}
	return ch, nil
}

// run carries out one request; the error text is what helm prints on stderr.
func (c *cluster) run(req *request) (int, error) {
	rev, err := c.act(req)
	if err == nil {
		return rev, nil
	}
	switch req.Verb {
	case "install":
		return 0, fmt.Errorf("Error: INSTALLATION FAILED: %w", err)
	case "upgrade":
		return 0, fmt.Errorf("Error: UPGRADE FAILED: %w", err)
	}
	return 0, fmt.Errorf("Error: %w", err)
}

func (c *cluster) act(req *request) (int, error) {
	if req.Release == "" || req.Namespace == "" {
		return 0, errors.New("a release and a namespace are required")
	}
	cfg, err := c.configuration(req.Namespace)
	if err != nil {
		return 0, err
	}
	labels := map[string]string{operatorLabel: operatorValue}
	switch req.Verb {
	case "install":
		ch, vals, err := chartAndValues(req)
		if err != nil {
			return 0, err
		}
		in := action.NewInstall(cfg)
		in.WaitOptions = append(in.WaitOptions, kube.WithStatusComputeWorkers(statusWorkers))
		in.ReleaseName, in.Namespace = req.Release, req.Namespace
		in.ServerSideApply = false // --server-side=false
		in.DisableOpenAPIValidation = true
		in.Labels = labels
		in.Timeout = actionTimeout
		in.WaitStrategy = kube.HookOnlyStrategy
		rel, err := in.RunWithContext(context.Background(), ch, vals)
		if err != nil {
			return 0, err
		}
		return version(rel), nil
	case "upgrade":
		ch, vals, err := chartAndValues(req)
		if err != nil {
			return 0, err
		}
		up := action.NewUpgrade(cfg)
		up.WaitOptions = append(up.WaitOptions, kube.WithStatusComputeWorkers(statusWorkers))
		up.Namespace = req.Namespace
		up.ServerSideApply = "false"
		up.DisableOpenAPIValidation = true
		up.ResetValues = true
		up.Labels = labels
		up.MaxHistory = maxHistory()
		up.Timeout = actionTimeout
		up.WaitStrategy = kube.HookOnlyStrategy
		rel, err := up.RunWithContext(context.Background(), req.Release, ch, vals)
		if err != nil {
			return 0, err
		}
		return version(rel), nil
	case "rollback":
		rb := action.NewRollback(cfg)
		rb.WaitOptions = append(rb.WaitOptions, kube.WithStatusComputeWorkers(statusWorkers))
		rb.Version = req.Revision
		rb.ServerSideApply = "false"
		rb.MaxHistory = maxHistory()
		rb.Timeout = actionTimeout
		rb.WaitStrategy = kube.HookOnlyStrategy
		return 0, rb.Run(req.Release)
	case "uninstall":
		un := action.NewUninstall(cfg)
		un.WaitOptions = append(un.WaitOptions, kube.WithStatusComputeWorkers(statusWorkers))
		un.DeletionPropagation = deletionPropagaton
		un.Timeout = actionTimeout
		un.WaitStrategy = kube.HookOnlyStrategy
		_, err := un.Run(req.Release)
		return 0, err
	}
	return 0, fmt.Errorf("unknown verb %q", req.Verb)
}

// chartAndValues: values arrive as JSON, read as helm reads `--values -` (JSON is YAML).
func chartAndValues(req *request) (chart.Charter, map[string]any, error) {
	ch, err := loadChart(req.Chart)
	if err != nil {
		return nil, nil, err
	}
	raw := []byte(req.Values)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	vals, err := valuesloader.LoadValues(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to parse -: %w", err)
	}
	return ch, vals, nil
}

func version(rel any) int {
	switch r := rel.(type) {
	case *release.Release:
		return r.Version
	case release.Release:
		return r.Version
	}
	return 0
}
