package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

var templateVar = regexp.MustCompile(`\$\{[a-z_]+\}`)

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Type    string            `json:"type"`
		Title   string            `json:"title"`
		Targets []json.RawMessage `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T, name string) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "provisioning", "dashboards", name))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// TestProvisionedDashboards checks that every panel query of the shipped
// dashboards is one the backend accepts, and that the promised panels exist.
func TestProvisionedDashboards(t *testing.T) {
	panelTypes := map[string][]string{}
	for _, name := range []string{"junction-overview.json", "junction-scenarios.json"} {
		d := readDashboard(t, name)
		for _, p := range d.Panels {
			panelTypes[d.UID] = append(panelTypes[d.UID], p.Type+":"+p.Title)
			for _, raw := range p.Targets {
				filled := templateVar.ReplaceAll(raw, []byte("service:shop/checkout"))
				if _, err := ParseQuery(filled, ""); err != nil {
					t.Errorf("%s panel %q: %v", name, p.Title, err)
				}
			}
		}
	}
	for _, want := range []string{"nodeGraph:Entity graph", "table:Alerts", "state-timeline:Alert timeline"} {
		if !slices.Contains(panelTypes["junction-overview"], want) {
			t.Errorf("overview lacks %s: %v", want, panelTypes["junction-overview"])
		}
	}
	for _, row := range []string{"Surge", "Bottleneck", "Database", "Cross-chain", "Streaming", "Cost"} {
		if !slices.Contains(panelTypes["junction-scenarios"], "row:"+row) {
			t.Errorf("scenario dashboard lacks the %s row", row)
		}
	}
}

func TestProvisionedDatasource(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "provisioning", "datasources", "junction.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Datasources []struct {
			Type     string         `yaml:"type"`
			UID      string         `yaml:"uid"`
			URL      string         `yaml:"url"`
			JSONData map[string]any `yaml:"jsonData"`
			Secure   map[string]any `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Datasources) != 1 {
		t.Fatalf("%d data sources", len(f.Datasources))
	}
	ds := f.Datasources[0]
	if ds.Type != PluginID || ds.URL != "http://127.0.0.1:8480" || ds.Secure[secureBearerToken] == nil {
		t.Errorf("provisioned data source %+v", ds)
	}
	if _, ok := ds.JSONData[secureBearerToken]; ok {
		t.Error("the bearer token is in plain jsonData")
	}
}
