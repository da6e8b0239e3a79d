package wasmprocessor

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The guest ABI, kept in this one file. Semantics follow otelwasm's host:
//
//	current*/getPluginConfig(buf, limit) -> len: copy the payload to buf when
//	  it fits, else return 0 (the guest grows its buffer and calls again; an
//	  empty payload also reads as 0);
//	setResult*/setResultStatusReason(buf, len): the guest hands back bytes.
const hostModule = "opentelemetry.io/wasm"

var (
	i32   = api.ValueTypeI32
	read  = []api.ValueType{i32, i32}
	reads = []api.ValueType{i32}
)

func writeIfFits(m api.Memory, payload []byte, buf, limit uint32) uint64 {
	if uint32(len(payload)) > limit || !m.Write(buf, payload) {
		return 0
	}
	return uint64(len(payload))
}

func copyOut(m api.Memory, buf, n uint32) ([]byte, bool) {
	b, ok := m.Read(buf, n)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	current := api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = writeIfFits(mod.Memory(), callFrom(ctx).in, uint32(stack[0]), uint32(stack[1]))
	})
	setResult := api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		c := callFrom(ctx)
		if b, ok := copyOut(mod.Memory(), uint32(stack[0]), uint32(stack[1])); ok {
			c.out, c.outSet = b, true
		}
	})
	b := rt.NewHostModuleBuilder(hostModule)
	for _, name := range []string{"currentMetrics", "currentLogs", "currentTraces"} {
		b = b.NewFunctionBuilder().WithGoModuleFunction(current, read, reads).
			WithParameterNames("buf", "buf_limit").Export(name)
	}
	for _, name := range []string{"setResultMetrics", "setResultLogs", "setResultTraces"} {
		b = b.NewFunctionBuilder().WithGoModuleFunction(setResult, read, nil).
			WithParameterNames("buf", "buf_len").Export(name)
	}
	_, err := b.
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = writeIfFits(mod.Memory(), callFrom(ctx).config, uint32(stack[0]), uint32(stack[1]))
	}), read, reads).WithParameterNames("buf", "buf_limit").Export("getPluginConfig").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		if b, ok := copyOut(mod.Memory(), uint32(stack[0]), uint32(stack[1])); ok {
			callFrom(ctx).reason = string(b)
		}
	}), read, nil).WithParameterNames("buf", "buf_len").Export("setResultStatusReason").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = 0
	}), nil, reads).Export("getShutdownRequested").
		Instantiate(ctx)
	return err
}
