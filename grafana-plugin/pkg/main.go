// Command gpx_junction is the backend of the Junction Grafana data source.
// Grafana starts it and talks to it over gRPC.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/junction-sre/junction/grafana-plugin/pkg/plugin"
)

func main() {
	// Manage serves the handlers with one instance per configured data
	// source, created and disposed as the settings change.
	if err := datasource.Manage(plugin.PluginID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error(err.Error())
		os.Exit(1)
	}
}
