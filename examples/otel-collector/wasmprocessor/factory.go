// Package wasmprocessor is a small OpenTelemetry Collector processor that runs
// a Wasm guest speaking otelwasm's guest ABI (host module
// "opentelemetry.io/wasm", OTLP protobuf payloads). It exists because the
// otelwasm modules cannot be fetched through this project's Go module proxy;
// the component type and config keys match otelwasm's so configs carry over.
package wasmprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

var componentType = component.MustNewType("wasm")

func NewFactory() processor.Factory {
	return processor.NewFactory(
		componentType,
		func() component.Config { return &Config{} },
		processor.WithMetrics(createMetrics, component.StabilityLevelAlpha),
		processor.WithLogs(createLogs, component.StabilityLevelAlpha),
	)
}

var mutates = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	g, err := newGuest(ctx, cfg.(*Config), set.Logger)
	if err != nil {
		return nil, err
	}
	if err := g.requireSignal(ctx, signalMetrics, "processMetrics"); err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, g.processMetrics, mutates,
		processorhelper.WithShutdown(g.shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	g, err := newGuest(ctx, cfg.(*Config), set.Logger)
	if err != nil {
		return nil, err
	}
	if err := g.requireSignal(ctx, signalLogs, "processLogs"); err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, g.processLogs, mutates,
		processorhelper.WithShutdown(g.shutdown))
}
