package xchain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestEventFromAttributes(t *testing.T) {
	ts := at(time.Minute)
	tests := []struct {
		name     string
		resource map[string]any
		attrs    map[string]any
		want     Event
		wantOK   bool
		wantErr  string
	}{
		{
			name:     "span attributes",
			resource: map[string]any{"service.name": "hermes"},
			attrs: map[string]any{
				"xchain.message.id": "transfer/channel-0/42", "xchain.stage": "relayed",
				"xchain.source.chain": "osmosis-1", "xchain.destination.chain": "cosmoshub-4",
				"xchain.source.tx.hash": "AB12", "xchain.destination.tx.hash": "CD34",
				"xchain.gas.used": int64(120000), "xchain.gas.price": 0.025,
				"xchain.fee.amount": "3000", "xchain.fee.denom": "uatom",
			},
			want: Event{
				MessageID: "transfer/channel-0/42", Stage: StageRelayed, SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4",
				Service: "hermes", Time: ts, SourceTxHash: "AB12", DestinationTxHash: "CD34",
				GasUsed: 120000, GasPrice: 0.025, FeeAmount: 3000, FeeDenom: "uatom",
			},
			wantOK: true,
		},
		{
			name:     "resource fallback and relayer override",
			resource: map[string]any{"service.name": "bridge-ui", "xchain.source.chain": "ethereum", "xchain.destination.chain": "arbitrum"},
			attrs:    map[string]any{"xchain.message.id": "0xmsg", "xchain.stage": "sent", "xchain.relayer": "axelar-relayer"},
			want:     Event{MessageID: "0xmsg", Stage: StageSent, SourceChain: "ethereum", DestinationChain: "arbitrum", Relayer: "axelar-relayer", Service: "bridge-ui", Time: ts},
			wantOK:   true,
		},
		{name: "not a cross-chain record", resource: map[string]any{"service.name": "shop"}, attrs: map[string]any{"http.route": "/"}},
		{name: "empty id", attrs: map[string]any{"xchain.message.id": "", "xchain.stage": "sent"}, wantOK: true, wantErr: "xchain.message.id is empty"},
		{name: "missing stage", attrs: map[string]any{"xchain.message.id": "m"}, wantOK: true, wantErr: `message "m": xchain.stage is missing`},
		{name: "unknown stage", attrs: map[string]any{"xchain.message.id": "m", "xchain.stage": "delivered"}, wantOK: true, wantErr: `unknown xchain.stage "delivered"`},
		{name: "gas not a number", attrs: map[string]any{"xchain.message.id": "m", "xchain.stage": "sent", "xchain.gas.used": "lots"}, wantOK: true, wantErr: `xchain.gas.used: "lots" is not a number`},
		{name: "negative fee", attrs: map[string]any{"xchain.message.id": "m", "xchain.stage": "sent", "xchain.fee.amount": -1.0}, wantOK: true, wantErr: "xchain.fee.amount: -1 is not a non-negative finite number"},
		{name: "gas price a map", attrs: map[string]any{"xchain.message.id": "m", "xchain.stage": "sent", "xchain.gas.price": map[string]any{"a": 1}}, wantOK: true, wantErr: "xchain.gas.price: want a number, got a Map value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, attrs := pcommon.NewMap(), pcommon.NewMap()
			require.NoError(t, res.FromRaw(tt.resource))
			require.NoError(t, attrs.FromRaw(tt.attrs))
			got, ok, err := EventFromAttributes(res, attrs, ts)
			assert.Equal(t, tt.wantOK, ok)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestStageNames(t *testing.T) {
	for s := StageSent; s < numStages; s++ {
		got, err := ParseStage(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	assert.True(t, StageAcknowledged.Terminal())
	assert.True(t, StageTimedOut.Terminal())
	assert.False(t, StageRelayed.Terminal())
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	require.NoError(t, def.Validate())
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr []string
	}{
		{"bounds", func(c *Config) { c.MaxMessages, c.MaxClosed, c.MaxAge = 0, -1, 0 },
			[]string{"max_messages must be greater than 0, got 0", "max_closed must be greater than 0, got -1", "max_age must be a positive duration"}},
		{"stuck after max age", func(c *Config) { c.StuckAfter = 48 * time.Hour }, []string{"stuck_after (48h0m0s) must be shorter than max_age (24h0m0s)"}},
		{"prices without unit", func(c *Config) { c.Fee.Prices = map[string]float64{"uatom": 1} }, []string{`fee::prices is set but fee::unit is "native"`}},
		{"unit without prices", func(c *Config) { c.Fee.Unit = "USD" }, []string{`fee::unit is "USD" but fee::prices is empty`}},
		{"bad price", func(c *Config) { c.Fee = FeeConfig{Unit: "USD", Prices: map[string]float64{"wei": -2}} }, []string{"fee::prices::wei must be a non-negative number"}},
		{"height names", func(c *Config) { c.Metrics.FinalizedHeight = []string{"chain_head_height", ""} },
			[]string{`metrics::finalized_height[0]: "chain_head_height" is already in metrics::latest_height`, "metrics::finalized_height[1] is empty"}},
		{"no height names", func(c *Config) { c.Metrics.LatestHeight = nil }, []string{"metrics::latest_height must name at least one metric"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
			_, err = New(cfg, Settings{})
			assert.Error(t, err, "New refuses an invalid config")
		})
	}
}
