package main

import (
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

var testTime = time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)

func TestSumMetric(t *testing.T) {
	text := `# HELP otelcol_receiver_accepted_spans Number of spans successfully pushed into the pipeline.
# TYPE otelcol_receiver_accepted_spans counter
otelcol_receiver_accepted_spans{receiver="otlp",service_name="junction",transport="grpc"} 1500
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http",note="a b"} 25
otelcol_receiver_accepted_spans_other{receiver="otlp"} 1000000
otelcol_receiver_accepted_spans 7 1700000000000
otelcol_receiver_refused_spans{receiver="otlp"} 3
`
	if got, want := sumMetric(text, "otelcol_receiver_accepted_spans"), 1532.0; got != want {
		t.Fatalf("sumMetric = %v, want %v", got, want)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) after a command name with a space
	// and a parenthesis in it.
	stat := "4242 (jun (x) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 0 0 20 0 9 0 100 1000000 2000 18446744073709551615"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1290 {
		t.Fatalf("parseStatCPU = %d, want 1290", got)
	}
	if _, err := parseStatCPU("4242 junction S 1"); err == nil {
		t.Fatal("no error for a stat line without the command in parentheses")
	}
}

func TestParseSchedRuntime(t *testing.T) {
	sched := "junction (4242, #threads: 9)\n" +
		"-------------------------------------------------------------------\n" +
		"se.exec_start                                :       1847955.825861\n" +
		"se.vruntime                                  :          1234.000001\n" +
		"se.sum_exec_runtime                          :           176.622627\n" +
		"nr_switches                                  :                   12\n"
	got, ok := parseSchedRuntime(sched)
	if !ok || math.Abs(got-0.176622627) > 1e-12 {
		t.Fatalf("parseSchedRuntime = %v, %v; want 0.176622627 s", got, ok)
	}
	if _, ok := parseSchedRuntime("nr_switches : 12\n"); ok {
		t.Fatal("ok for a sched file without se.sum_exec_runtime")
	}
}

func TestCPUBetween(t *testing.T) {
	a := cpuSample{ticks: 100, threads: map[string]float64{"1": 1.0, "2": 0.5}}
	b := cpuSample{ticks: 103, threads: map[string]float64{"1": 1.012, "2": 0.515, "3": 0.004}}
	secs, coarse := cpuBetween(a, b, 100)
	if coarse || math.Abs(secs-0.031) > 1e-9 {
		t.Fatalf("cpuBetween = %v, coarse %v; want 0.031 s from the threads (a new thread counts from 0)", secs, coarse)
	}
	// Thread 2 ended in the window: its time there is unknown, so the
	// clock ticks are used.
	delete(b.threads, "2")
	if secs, coarse := cpuBetween(a, b, 100); !coarse || secs != 0.03 {
		t.Fatalf("cpuBetween with an ended thread = %v, coarse %v; want 0.03 s from the ticks", secs, coarse)
	}
	// No sched files on the kernel.
	if secs, coarse := cpuBetween(cpuSample{ticks: 100}, cpuSample{ticks: 104}, 100); !coarse || secs != 0.04 {
		t.Fatalf("cpuBetween without sched files = %v, coarse %v; want 0.04 s", secs, coarse)
	}
}

func TestReadCPUOfThisProcess(t *testing.T) {
	a, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r0 := rusageSecs(t)
	// Spin until the kernel's own account (getrusage, microseconds) shows
	// 50 ms more CPU, however busy the machine: readCPU must agree.
	for rusageSecs(t)-r0 < 0.05 {
	}
	r1 := rusageSecs(t)
	b, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	secs, coarse := cpuBetween(a, b, clockTicks())
	tol := 0.01 + 0.1*(r1-r0) // readCPU's samples are taken just outside getrusage's
	if coarse {
		t.Logf("clock ticks only (no sched files, or a thread ended)")
		tol += 0.02
	}
	if math.Abs(secs-(r1-r0)) > tol {
		t.Fatalf("cpuBetween = %.4f s (coarse %v), getrusage %.4f s over the same spin", secs, coarse, r1-r0)
	}
}

func rusageSecs(t *testing.T) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func TestParseVoluntarySwitches(t *testing.T) {
	status := "Name:\tjunction\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n"
	if got := parseVoluntarySwitches(status); got != 1234 {
		t.Fatalf("parseVoluntarySwitches = %d, want 1234 (not the nonvoluntary 56)", got)
	}
}

func TestDefaultVariantsExtendTheDefault(t *testing.T) {
	p := ports{grpc: 1, http: 2, metrics: 3, health: 4, api: 5, prom: 6, pprof: 7}
	def, _ := configByName("default")
	base := def.sets(p)
	for name, v := range defaultVariants {
		spec, ok := configByName(name)
		if !ok || spec.file != "" {
			t.Fatalf("%s: not a variant of the embedded default", name)
		}
		got := spec.sets(p)
		if want := append(append([]string(nil), base...), v.sets...); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s sets %q, want the default's then %q", name, got, v.sets)
		}
	}
	if _, ok := configByName("default-bogus"); ok {
		t.Fatal("default-bogus accepted")
	}
}

func TestRenderIdle(t *testing.T) {
	o := options{secs: 40, rounds: 2, configs: []string{"passthrough", "default-nop-junction"}, command: "make perf PERF_ARGS=-idle"}
	// Medians of 40 and 41, 42 and 43 switches/s print rounded half to even.
	rs := []idleResult{
		{config: "passthrough", cpuSecs: 0.040, switches: 1600, secs: 40},
		{config: "default-nop-junction", cpuSecs: 0.060, switches: 1680, secs: 40},
		{config: "passthrough", cpuSecs: 0.050, switches: 1640, secs: 40, coarse: true},
		{config: "default-nop-junction", cpuSecs: 0.056, switches: 1720, secs: 40},
	}
	out := renderIdle(o, rs, testTime, 0, "0, 0, 0", "0, 0, 0", "v")
	for _, want := range []string{
		"| passthrough | 1.12 (1.00–1.25) | 40 (40–41) |",
		"| default, nop for junction | 1.45 (1.40–1.50) | 42 (42–43) |",
		"In 1 of the 4 windows the CPU is in clock ticks",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("renderIdle output lacks %q:\n%s", want, out)
		}
	}
}

func TestIdleRefusesW(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"-idle", "-w=docs/benchmarks.md"}, &out); err == nil || !strings.Contains(err.Error(), "-idle") {
		t.Fatalf("run -idle -w: err = %v, want a refusal naming -idle", err)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want stats
	}{
		{[]float64{3, 1, 2}, stats{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, stats{2.5, 1, 4}},
		{[]float64{5}, stats{5, 5, 5}},
	} {
		if got := summarize(tc.in); got != tc.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if got := (stats{1.234, 1.1, 1.5}).format(2, "×"); got != "1.23× (1.10–1.50)" {
		t.Errorf("format = %q", got)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# B\n\nbefore\n\n" + beginMarker + "\nold\n" + endMarker + "\n\nafter\n"
	got, err := replaceSection(doc, beginMarker+"\nnew\n"+endMarker+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# B\n\nbefore\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\nafter\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := replaceSection("no markers here", "x"); err == nil {
		t.Fatal("no error for a file without markers")
	}
}

func TestRenderTable(t *testing.T) {
	o := options{secs: 15, warmup: 3, rounds: 2, loads: []int{500}, configs: []string{"passthrough", "contrib", "default"}, workers: 2, childSpans: 4, command: "make perf"}
	var rs []result
	for round, cpu := range [][3]int64{{100, 150, 130}, {120, 140, 150}} {
		for i, c := range o.configs {
			rs = append(rs, result{config: c, load: 500, round: round + 1, secs: 15, cpuSecs: float64(cpu[i]) / 100, spans: 7500})
		}
	}
	out := render(o, rs, testTime, 0, "1, 1, 1", "1, 1, 1", "v")
	// Passthrough 133.3 and 160 µs/span, default 173.3 and 200: ratios
	// 1.30 and 1.25, median 1.275; against contrib 0.87 and 1.07.
	for _, want := range []string{
		"| 500 | 500 | 146.67 (133.33–160.00) | 193.33 (186.67–200.00) | 186.67 (173.33–200.00) | 1.27× (1.25–1.30) | 0.97× (0.87–1.07) |",
		"servicegraph",
		beginMarker, endMarker,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownProfileConfigIsRefused(t *testing.T) {
	var out strings.Builder
	err := run([]string{"-profile-configs=passthrough,bogus"}, &out)
	if err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Fatalf("run with an unknown -profile-configs entry: err = %v, want one naming \"bogus\"", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q before refusing", out.String())
	}
}
