package wasmprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// Bits returned by the guest's getSupportedTelemetry (otelwasm's order).
const (
	signalMetrics uint64 = 1 << iota
	signalLogs
	signalTraces
)

// guest is one instantiated module. A wazero module instance is not safe for
// concurrent calls, and pipelines call processors concurrently: mu serialises.
type guest struct {
	mu     sync.Mutex
	rt     wazero.Runtime
	mod    api.Module
	config []byte
	logger *zap.Logger
}

// call is the per-invocation state the host functions read and write.
type call struct {
	in     []byte
	config []byte
	out    []byte
	outSet bool
	reason string
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		c = &call{} // getSupportedTelemetry runs without a payload
	}
	return c
}

func newGuest(ctx context.Context, cfg *Config, logger *zap.Logger) (*guest, error) {
	code, err := os.ReadFile(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("wasm: reading %s: %w", cfg.Path, err)
	}
	pluginConfig, err := json.Marshal(cfg.PluginConfig)
	if err != nil {
		return nil, fmt.Errorf("wasm: plugin_config is not JSON-encodable: %w", err)
	}
	if cfg.PluginConfig == nil {
		pluginConfig = []byte("{}")
	}
	rt := wazero.NewRuntime(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasm: compiling %s: %w", cfg.Path, err)
	}
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().
		WithStartFunctions("_initialize").WithStderr(os.Stderr).WithStdout(os.Stderr))
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiating %s: %w", cfg.Path, err)
	}
	return &guest{rt: rt, mod: mod, config: pluginConfig, logger: logger}, nil
}

func (g *guest) requireSignal(ctx context.Context, bit uint64, export string) error {
	fn := g.mod.ExportedFunction("getSupportedTelemetry")
	if fn == nil {
		return fmt.Errorf("wasm: guest does not export getSupportedTelemetry")
	}
	res, err := fn.Call(context.WithValue(ctx, callKey{}, &call{config: g.config}))
	if err != nil || len(res) == 0 {
		return fmt.Errorf("wasm: getSupportedTelemetry failed: %v", err)
	}
	if res[0]&bit == 0 || g.mod.ExportedFunction(export) == nil {
		return fmt.Errorf("wasm: guest does not support %s", export)
	}
	return nil
}

// invoke runs one export over an OTLP payload. Any guest failure (trap,
// non-zero status, no result) is logged and reported as ok=false so the
// caller forwards its input unchanged: the pipeline never loses data to us.
func (g *guest) invoke(ctx context.Context, export string, in []byte) (out []byte, ok bool) {
	c := &call{in: in, config: g.config}
	g.mu.Lock()
	res, err := g.mod.ExportedFunction(export).Call(context.WithValue(ctx, callKey{}, c))
	g.mu.Unlock()
	switch {
	case err != nil:
		g.logger.Error("wasm guest trapped; data passed through", zap.String("export", export), zap.Error(err))
		return nil, false
	case len(res) == 0 || res[0] != 0:
		g.logger.Warn("wasm guest returned an error status; data passed through",
			zap.String("export", export), zap.Uint64s("status", res), zap.String("reason", c.reason))
		return nil, false
	case !c.outSet:
		g.logger.Warn("wasm guest set no result; data passed through", zap.String("export", export))
		return nil, false
	}
	if c.reason != "" {
		g.logger.Warn("wasm guest status", zap.String("export", export), zap.String("reason", c.reason))
	}
	return c.out, true
}

func (g *guest) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	in, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		return md, nil
	}
	out, ok := g.invoke(ctx, "processMetrics", in)
	if !ok {
		return md, nil
	}
	res, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(out)
	if err != nil {
		g.logger.Error("wasm guest result is not OTLP metrics; data passed through", zap.Error(err))
		return md, nil
	}
	return res, nil
}

func (g *guest) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	in, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		return ld, nil
	}
	out, ok := g.invoke(ctx, "processLogs", in)
	if !ok {
		return ld, nil
	}
	res, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(out)
	if err != nil {
		g.logger.Error("wasm guest result is not OTLP logs; data passed through", zap.Error(err))
		return ld, nil
	}
	return res, nil
}

func (g *guest) shutdown(ctx context.Context) error {
	return g.rt.Close(ctx)
}
