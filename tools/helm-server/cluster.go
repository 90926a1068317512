package main

import (
	"net/http"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/kubeenv"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// cluster holds what a helm process builds anew each time and the server builds once: the
// REST config, one clientset, the discovery results and the REST mapper made from them.
type cluster struct {
	config    *rest.Config
	rules     *clientcmd.ClientConfigLoadingRules
	clientset kubernetes.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    *mapper

	mu   sync.Mutex
	caps *common.Capabilities // nil until needed, and again after the mapper was reset
}

// newCluster reads the kubeconfig the way helm does ($KUBECONFIG, ~/.kube/config, else the
// in-cluster service account).
func newCluster() (*cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	config, err := loader.ClientConfig()
	if err != nil {
		return nil, err
	}
	// helm's CLI allows a burst of 100 per process; one process now serves every release, so
	// client-side throttling would queue unrelated releases behind each other. The API
	// server's priority and fairness still applies.
	config.QPS = -1
	config.UserAgent = "enclave-helm-server"
	// As helm's CLI: retry a request once on the API server's transient 5xx (etcd leader change).
	config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &kubeenv.RetryingRoundTripper{Wrapped: rt}
	})
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	disc := memory.NewMemCacheClient(clientset.Discovery())
	c := &cluster{config: config, rules: rules, clientset: clientset, discovery: disc}
	c.mapper = &mapper{DeferredDiscoveryRESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(disc), onReset: c.forgetCapabilities}
	return c, nil
}

func (c *cluster) forgetCapabilities() {
	c.mu.Lock()
	c.caps = nil
	c.mu.Unlock()
}

// capabilities is what helm's Configuration.getCapabilities computes, from the shared
// discovery cache instead of a fresh discovery per action.
func (c *cluster) capabilities() (*common.Capabilities, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.caps == nil {
		version, err := c.discovery.ServerVersion()
		if err != nil {
			return nil, err
		}
		apiVersions, err := action.GetVersionSet(c.discovery)
		if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
			return nil, err
		}
		c.caps = &common.Capabilities{
			APIVersions: apiVersions,
			KubeVersion: common.KubeVersion{Version: version.GitVersion, Major: version.Major, Minor: version.Minor},
			HelmVersion: common.DefaultCapabilities.HelmVersion,
		}
	}
	return c.caps.Copy(), nil
}

// getter is helm's RESTClientGetter for one namespace, over the shared cluster.
type getter struct {
	c         *cluster
	namespace string
}

func (g getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.c.config), nil }

func (g getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.c.discovery, nil
}

func (g getter) ToRESTMapper() (meta.RESTMapper, error) { return g.c.mapper, nil }

func (g getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	overrides := &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(g.c.rules, overrides)
}

// mapper is the discovery-backed REST mapper, asked again when a kind is unknown: a CRD
// installed after the server started must become usable without a restart.
type mapper struct {
	*restmapper.DeferredDiscoveryRESTMapper
	onReset func()

	mu        sync.Mutex
	lastReset time.Time
}

const resetInterval = 2 * time.Second // at most one rediscovery per interval

func (m *mapper) reset() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.lastReset) < resetInterval {
		return false
	}
	m.lastReset = time.Now()
	m.Reset()
	m.onReset()
	return true
}

func (m *mapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	r, err := m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	if meta.IsNoMatchError(err) && m.reset() {
		r, err = m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	}
	return r, err
}

func (m *mapper) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	r, err := m.DeferredDiscoveryRESTMapper.RESTMappings(gk, versions...)
	if meta.IsNoMatchError(err) && m.reset() {
		r, err = m.DeferredDiscoveryRESTMapper.RESTMappings(gk, versions...)
	}
	return r, err
}

func (m *mapper) KindFor(resource schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	r, err := m.DeferredDiscoveryRESTMapper.KindFor(resource)
	if meta.IsNoMatchError(err) && m.reset() {
		r, err = m.DeferredDiscoveryRESTMapper.KindFor(resource)
	}
	return r, err
}
