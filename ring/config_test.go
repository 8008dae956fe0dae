package ring

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	f := func(cfg Config, wantErr string) {
		t.Helper()
		err := cfg.Validate()
		if wantErr == "" {
			if err != nil {
				t.Fatalf("%+v.Validate(): got %v; want nil", cfg, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) || !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%+v.Validate(): got %v; want an ErrInvalidConfig containing %q", cfg, err, wantErr)
		}
	}
	f(DefaultConfig(), "")
	f(Config{Replicas: 1, VNodes: 1}, "")
	f(Config{Replicas: 5, VNodes: MaxVNodes}, "")
	f(Config{Replicas: 0, VNodes: 16}, "Config.Replicas must be >= 1, got 0")
	f(Config{Replicas: -2, VNodes: 16}, "Config.Replicas must be >= 1, got -2")
	f(Config{Replicas: 3, VNodes: 0}, "Config.VNodes must be in [1, 65536], got 0")
	f(Config{Replicas: 3, VNodes: -1}, "Config.VNodes must be in [1, 65536], got -1")
	f(Config{Replicas: 3, VNodes: MaxVNodes + 1}, "Config.VNodes must be in [1, 65536], got 65537")
}

func TestDefaultConfig(t *testing.T) {
	got := DefaultConfig()
	want := Config{Replicas: 3, VNodes: DefaultVNodes}
	if got != want {
		t.Fatalf("DefaultConfig(): got %+v; want %+v", got, want)
	}
}

// TestNewFillsDefaults checks that New treats zero fields as "use the
// default", so Config{} builds the same ring as DefaultConfig().
func TestNewFillsDefaults(t *testing.T) {
	f := func(cfg, want Config) {
		t.Helper()
		r := mustNew(t, numberedNodes(2), cfg)
		if got := r.Config(); got != want {
			t.Fatalf("New(%+v).Config(): got %+v; want %+v", cfg, got, want)
		}
		if got := r.ReplicationFactor(); got != want.Replicas {
			t.Fatalf("New(%+v).ReplicationFactor(): got %d; want %d", cfg, got, want.Replicas)
		}
	}
	f(Config{}, DefaultConfig())
	f(Config{Replicas: 2}, Config{Replicas: 2, VNodes: DefaultVNodes})
	f(Config{VNodes: 8}, Config{Replicas: DefaultReplicas, VNodes: 8})
}
