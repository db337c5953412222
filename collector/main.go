// Program junction is the Junction OpenTelemetry Collector distribution.
//
// components.go is generated from builder-config.yaml by `make generate`;
// this file replaces the builder's generated main so that Junction can embed
// its default config and add its own subcommands without editing generated
// code.
package main

import (
	_ "embed"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpsprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// defaultConfig is used when no --config flag is given: OTLP on loopback,
// no outside service needed.
//
//go:embed config.yaml
var defaultConfig string

// extraCommands are Junction's own subcommands; packages register theirs in
// commands.go.
var extraCommands []func() *cobra.Command

func settings() otelcol.CollectorSettings {
	providers := []confmap.ProviderFactory{
		envprovider.NewFactory(),
		fileprovider.NewFactory(),
		httpprovider.NewFactory(),
		httpsprovider.NewFactory(),
		yamlprovider.NewFactory(),
	}
	modules := make(map[string]string, len(providers))
	for _, p := range providers {
		scheme := p.Create(confmap.ProviderSettings{}).Scheme()
		modules[scheme] = "go.opentelemetry.io/collector/confmap/provider/" + scheme + "provider v1.71.0"
	}
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "junction",
			Description: "Junction - entity-graph correlation and alerting for OpenTelemetry",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				// Replaced by the --config flags when any is given.
				URIs:              []string{"yaml:" + defaultConfig},
				ProviderFactories: providers,
			},
		},
		ProviderModules: modules,
	}
}

func newCommand() *cobra.Command {
	cmd := otelcol.NewCommand(settings())
	cmd.AddCommand(newDefaultConfigCommand())
	for _, c := range extraCommands {
		cmd.AddCommand(c())
	}
	return cmd
}

// newDefaultConfigCommand prints the embedded default config, as a starting
// point for a config of one's own.
func newDefaultConfigCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "default-config",
		Short: "Print the embedded default config used when no --config is given",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write([]byte(defaultConfig))
			return err
		},
	}
}

// withDefaultConfig returns args with the embedded default config put
// first when they set values with --set but name no --config: the
// collector would otherwise build its config from the --set values alone,
// while `junction --set k=v` means the defaults with k changed.
func withDefaultConfig(args []string) []string {
	set := false
	for _, a := range args {
		if a == "--" {
			break
		}
		switch {
		case a == "--config" || strings.HasPrefix(a, "--config="):
			return args
		case a == "--set" || strings.HasPrefix(a, "--set="):
			set = true
		}
	}
	if !set {
		return args
	}
	return append([]string{"--config=yaml:" + defaultConfig}, args...)
}

func main() {
	cmd := newCommand()
	cmd.SetArgs(withDefaultConfig(os.Args[1:]))
	if err := cmd.Execute(); err != nil {
		// cobra has printed the error already.
		os.Exit(1)
	}
}
