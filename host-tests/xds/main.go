// uwsgi-red-xds: a small xDS control plane for the rollout tests.
//
// It serves, over ADS (gRPC, loopback), one snapshot per Envoy node: a
// listener whose HTTP connection manager takes its routes from RDS and the
// red-filter from ECDS (the HTTP filter's config_discovery points back at
// ADS, as Istio does for WasmPlugin/TrafficExtension), the route
// configuration, the upstream cluster (uWSGI) and a cluster for the module
// server. The test drives it through a small HTTP API on loopback:
//
//	POST /push     {"version": "...", "filter": {TypedExtensionConfig value as JSON}}
//	               sets a new snapshot for every node; only the filter changes;
//	               a NACKed filter is pushed again (nackRetries)
//	GET  /status   every ACK and NACK seen, per node and type; per node, the
//	               snapshot version last set and whether a retry is pending
//	GET  /wasm/... files from -wasm-dir (the modules' remote source)
//
// `uwsgi-red-xds yaml2json FILE` converts YAML manifests and CRDs to JSON
// for the manifest-schema tests (yaml2json.go).
//
// Everything else (listener, routes, clusters) stays the same across
// pushes, so a push changes exactly one resource: the filter.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The ECDS resource name: the HCM's filter entry and the pushed
// TypedExtensionConfig must both carry it.
const filterName = "red"

var wasmTypeURL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

// reply is one ACK or NACK an Envoy sent (a DiscoveryRequest that answers
// a response nonce).
type reply struct {
	Node    string `json:"node"`
	TypeURL string `json:"type_url"`
	Version string `json:"version"`
	Nonce   string `json:"nonce"`
	Error   string `json:"error,omitempty"`
}

type controlPlane struct {
	cache     cache.SnapshotCache
	nodes     map[string]uint32 // node id -> listen port
	appPort   uint32
	apiPort   uint32
	mu        sync.Mutex
	replies   []reply
	streamsMu sync.Mutex
	streams   map[int64]string // stream id -> node id
	// The filter of the latest push and how often each node has been
	// sent it again after a NACK (see retryAfterNack).
	filter  *core.TypedExtensionConfig
	version string
	retries map[string]int
	// Per node: the snapshot version last set (the push's or a retry's)
	// and whether a retry is scheduled. An ACK says the filter is applied
	// only when it answers the node's current version and no retry is
	// pending: after a NACK the snapshot cache resends the refused version
	// at once, and Envoy ACKs that identical resource without applying it.
	current map[string]string
	pending map[string]bool
}

// nodeStatus is what GET /status reports per node.
type nodeStatus struct {
	Version      string `json:"version"`
	RetryPending bool   `json:"retry_pending"`
	Retries      int    `json:"retries"`
}

// How often a NACKed filter is pushed again to the node that refused it,
// one second apart. With vm_config.nack_on_code_cache_miss Envoy refuses a
// module it has not fetched yet and fetches it in the background; the next
// attempt finds it in the cache. A module that cannot be fetched (a wrong
// sha256) or loaded is refused every time, and the node keeps serving the
// filter it had.
//
// Each attempt differs from the last in one VM environment variable
// (attemptEnv): Envoy 1.40 ACKs a resource identical to one it rejected
// without applying it (its config dump then shows the rejected version
// while the previous filter keeps running), so a plain resend would
// neither load the fetched module nor report the truth.
var nackRetries = 2

const attemptEnv = "UWSGI_RED_XDS_ATTEMPT"

func (cp *controlPlane) onRequest(id int64, req *discovery.DiscoveryRequest) error {
	node := req.GetNode().GetId()
	cp.streamsMu.Lock()
	if node != "" {
		cp.streams[id] = node
	} else {
		node = cp.streams[id]
	}
	cp.streamsMu.Unlock()
	// A request without a response nonce is a subscription, not a reply.
	if req.GetResponseNonce() == "" {
		return nil
	}
	r := reply{Node: node, TypeURL: req.GetTypeUrl(), Version: req.GetVersionInfo(), Nonce: req.GetResponseNonce()}
	if d := req.GetErrorDetail(); d != nil {
		r.Error = d.GetMessage()
		log.Printf("NACK from %s for %s (nonce %s): %s", node, r.TypeURL, r.Nonce, r.Error)
	}
	cp.mu.Lock()
	cp.replies = append(cp.replies, r)
	retry := ""
	if r.Error != "" && r.TypeURL == resource.ExtensionConfigType && cp.retries[node] < nackRetries {
		cp.retries[node]++
		cp.pending[node] = true
		retry = fmt.Sprintf("%s-retry%d", cp.version, cp.retries[node])
	}
	filter := cp.filter
	cp.mu.Unlock()
	if retry != "" {
		go func() {
			time.Sleep(time.Second)
			cp.mu.Lock()
			defer cp.mu.Unlock()
			// A newer push replaces the retry.
			if cp.filter != filter {
				return
			}
			cp.pending[node] = false
			if err := cp.setSnapshot(node, retry, withAttempt(filter, retry)); err != nil {
				log.Printf("retry %s for %s: %v", retry, node, err)
				return
			}
			cp.current[node] = retry
		}()
	}
	return nil
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		log.Fatalf("anypb: %v", err)
	}
	return a
}

func staticCluster(name string, port uint32) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{
					HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
						Address: socketAddress(port),
					}},
				}},
			}},
		},
	}
}

func socketAddress(port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       "127.0.0.1",
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

// httpListener: HCM with RDS over ADS and the red-filter from ECDS. Until
// the first filter config arrives the listener warms (no default config):
// a listener never serves without the filter it was configured with.
func (cp *controlPlane) httpListener(port uint32) *listener.Listener {
	manager := &hcm.HttpConnectionManager{
		StatPrefix: "ingress_http",
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: "local",
		}},
		HttpFilters: []*hcm.HttpFilter{
			{
				Name: filterName,
				ConfigType: &hcm.HttpFilter_ConfigDiscovery{ConfigDiscovery: &core.ExtensionConfigSource{
					ConfigSource: adsSource(),
					TypeUrls:     []string{wasmTypeURL},
				}},
			},
			{
				Name:       "envoy.filters.http.router",
				ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
			},
		},
	}
	return &listener.Listener{
		Name:    "http_in",
		Address: socketAddress(port),
		FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(manager)},
			}},
		}},
	}
}

func routes() *route.RouteConfiguration {
	return &route.RouteConfiguration{
		Name: "local",
		VirtualHosts: []*route.VirtualHost{{
			Name:    "app",
			Domains: []string{"*"},
			Routes: []*route.Route{{
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{
					ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "uwsgi_app"},
					Timeout:          durationpb.New(30 * time.Second),
				}},
			}},
		}},
	}
}

// push sets snapshot `version` for every node with `filter` (a
// TypedExtensionConfig in protojson) as the ECDS resource.
func (cp *controlPlane) push(version string, filter []byte) error {
	var ext core.TypedExtensionConfig
	if err := protojson.Unmarshal(filter, &ext); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	if ext.GetName() != filterName {
		return fmt.Errorf("filter name %q, the listener asks for %q", ext.GetName(), filterName)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.filter, cp.version, cp.retries, cp.pending = &ext, version, map[string]int{}, map[string]bool{}
	for node := range cp.nodes {
		if err := cp.setSnapshot(node, version, &ext); err != nil {
			return err
		}
		cp.current[node] = version
	}
	return nil
}

// withAttempt: `ext` with attemptEnv=attempt in the Wasm VM's environment.
func withAttempt(ext *core.TypedExtensionConfig, attempt string) *core.TypedExtensionConfig {
	out := proto.Clone(ext).(*core.TypedExtensionConfig)
	var w wasmfilter.Wasm
	if err := out.GetTypedConfig().UnmarshalTo(&w); err != nil {
		return ext
	}
	vm := w.GetConfig().GetVmConfig()
	if vm == nil {
		return ext
	}
	if vm.EnvironmentVariables == nil {
		vm.EnvironmentVariables = &wasmv3.EnvironmentVariables{}
	}
	if vm.EnvironmentVariables.KeyValues == nil {
		vm.EnvironmentVariables.KeyValues = map[string]string{}
	}
	vm.EnvironmentVariables.KeyValues[attemptEnv] = attempt
	out.TypedConfig = mustAny(&w)
	return out
}

// setSnapshot: everything but the filter is the same in every version.
func (cp *controlPlane) setSnapshot(node, version string, ext *core.TypedExtensionConfig) error {
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ClusterType: {
			staticCluster("uwsgi_app", cp.appPort),
			staticCluster("wasm_http", cp.apiPort),
		},
		resource.ListenerType:        {cp.httpListener(cp.nodes[node])},
		resource.RouteType:           {routes()},
		resource.ExtensionConfigType: {ext},
	})
	if err != nil {
		return err
	}
	return cp.cache.SetSnapshot(context.Background(), node, snap)
}

func (cp *controlPlane) api(wasmDir string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/wasm/", http.StripPrefix("/wasm/", http.FileServer(http.Dir(wasmDir))))
	mux.HandleFunc("/push", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var body struct {
			Version string          `json:"version"`
			Filter  json.RawMessage `json:"filter"`
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(data, &body)
		}
		if err == nil && body.Version == "" {
			err = fmt.Errorf("no version")
		}
		if err == nil {
			err = cp.push(body.Version, body.Filter)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "pushed %s to %d nodes\n", body.Version, len(cp.nodes))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		nodes := map[string]nodeStatus{}
		for node := range cp.nodes {
			nodes[node] = nodeStatus{Version: cp.current[node], RetryPending: cp.pending[node], Retries: cp.retries[node]}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"replies": cp.replies, "nodes": nodes})
	})
	return mux
}

func main() {
	xdsPort := flag.Uint("xds-port", 0, "ADS gRPC port on 127.0.0.1")
	apiPort := flag.Uint("api-port", 0, "control API + module server port on 127.0.0.1")
	appPort := flag.Uint("app-port", 0, "upstream (uWSGI) port on 127.0.0.1")
	nodes := flag.String("nodes", "", "node-id=listen-port,... (one snapshot per Envoy)")
	wasmDir := flag.String("wasm-dir", ".", "directory served at /wasm/")
	flag.IntVar(&nackRetries, "nack-retries", nackRetries, "pushes of a NACKed filter again, one second apart")
	if len(os.Args) == 3 && os.Args[1] == "yaml2json" {
		if err := yaml2json(os.Args[2]); err != nil {
			log.Fatal(err)
		}
		return
	}
	flag.Parse()
	if *xdsPort == 0 || *apiPort == 0 || *appPort == 0 || *nodes == "" {
		log.Fatal("-xds-port, -api-port, -app-port and -nodes are required")
	}
	cp := &controlPlane{
		nodes:   map[string]uint32{},
		appPort: uint32(*appPort),
		apiPort: uint32(*apiPort),
		streams: map[int64]string{},
		retries: map[string]int{},
		current: map[string]string{},
		pending: map[string]bool{},
	}
	for _, kv := range strings.Split(*nodes, ",") {
		id, port, ok := strings.Cut(kv, "=")
		p, err := strconv.ParseUint(port, 10, 16)
		if !ok || err != nil || id == "" {
			log.Fatalf("bad -nodes entry %q", kv)
		}
		cp.nodes[id] = uint32(p)
	}
	cp.cache = cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	srv := server.NewServer(context.Background(), cp.cache, server.CallbackFuncs{StreamRequestFunc: cp.onRequest})

	grpcServer := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, srv)
	xl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *xdsPort))
	if err != nil {
		log.Fatal(err)
	}
	al, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *apiPort))
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(http.Serve(al, cp.api(*wasmDir))) }()
	log.Printf("ADS on %s, API on %s, nodes %v", xl.Addr(), al.Addr(), cp.nodes)
	log.Fatal(grpcServer.Serve(xl))
}
