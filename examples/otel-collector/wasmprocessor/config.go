package wasmprocessor

import (
	"errors"
	"os"
)

// Config mirrors otelwasm's `wasm` processor keys so a collector config
// written for this host also loads with otelwasm's component.
type Config struct {
	// Path of the guest module (wasm32-wasip1, reactor).
	Path string `mapstructure:"path"`
	// PluginConfig is handed to the guest as JSON through getPluginConfig.
	PluginConfig map[string]any `mapstructure:"plugin_config"`
}

func (c *Config) Validate() error {
	if c.Path == "" {
		return errors.New("path: must name a .wasm file")
	}
	if _, err := os.Stat(c.Path); err != nil {
		return err
	}
	return nil
}
