package realapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/junction-sre/junction/internal/pgtest"
)

// Settings are the knobs of the application that make or fix a fault,
// as a user would set them in each service's flags and redeploy.
type Settings struct {
	// DBPoolSize is the inventory service's pgxpool MaxConns.
	DBPoolSize int32
	// DBQuerySleep is the pg_sleep of the inventory query.
	DBQuerySleep time.Duration
	// Workers is the size of the orders service's worker pool.
	Workers int
	// WorkTime is how long a request holds an orders worker.
	WorkTime time.Duration
	// PricingDelay is how long the untraced pricing service takes.
	PricingDelay time.Duration
}

// Healthy are the settings of the application with every fault fixed:
// enough database connections and workers for the load, fast queries and
// a fast pricing service.
func Healthy() Settings {
	return Settings{
		DBPoolSize:   8,
		DBQuerySleep: 2 * time.Millisecond,
		Workers:      8,
		WorkTime:     10 * time.Millisecond,
		PricingDelay: 5 * time.Millisecond,
	}
}

// Settings returns the application's settings with the fault on. At the
// default load (Rate) a pool of one connection or one worker is busy
// about 70 % of the time, so with random arrivals requests queue behind
// each other.
func (f Fault) Settings() Settings {
	s := Healthy()
	switch f {
	case FaultDBPool:
		s.DBPoolSize = 1
		s.DBQuerySleep = 70 * time.Millisecond
	case FaultWorkerPool:
		s.Workers = 1
		s.WorkTime = 70 * time.Millisecond
	case FaultSlowDependency:
		s.PricingDelay = 400 * time.Millisecond
	}
	return s
}

// Rate is the default load on the edge, requests per second, with
// exponentially distributed gaps (random arrivals).
const Rate = 10

// The services' names (service.name); every instance of the application
// has its own service.namespace.
const (
	ServiceFrontend  = "frontend"
	ServiceOrders    = "orders"
	ServiceInventory = "inventory"
	// The pricing service has no tracing of its own and so no name in the
	// telemetry: only the orders service's client spans name it, by
	// address.
)

// AppConfig configures one instance of the application.
type AppConfig struct {
	// Namespace is the instance's service.namespace; it also names its
	// database.
	Namespace string
	// Postgres serves the instance's database (created by Start).
	Postgres *pgtest.Server
	// Telemetry makes each service's TracerProvider.
	Telemetry *Telemetry
	// Settings at start; Healthy when zero.
	Settings Settings
}

// App is one running instance of the application: frontend (HTTP) →
// orders (HTTP) → inventory (gRPC) → PostgreSQL, and orders → pricing
// (plain HTTP, untraced).
type App struct {
	cfg      AppConfig
	database string

	frontendAddr, ordersAddr, inventoryAddr, pricingAddr string

	servers []*http.Server
	grpcSrv *grpc.Server
	grpcCC  *grpc.ClientConn
	tps     []*tracerProvider

	settings atomic.Pointer[Settings]
	workers  atomic.Pointer[chan struct{}]
	poolMu   sync.Mutex // guards pool and every dbPool's users, retired
	pool     *dbPool
	mu       sync.Mutex // serialises Set
	poolTP   *tracerProvider

	closing sync.WaitGroup
}

// Start creates the instance's database and starts its four services on
// loopback ports.
func Start(ctx context.Context, cfg AppConfig) (_ *App, err error) {
	if cfg.Namespace == "" || cfg.Postgres == nil || cfg.Telemetry == nil {
		return nil, errors.New("realapp: AppConfig needs Namespace, Postgres and Telemetry")
	}
	if cfg.Settings == (Settings{}) {
		cfg.Settings = Healthy()
	}
	a := &App{cfg: cfg, database: databaseName(cfg.Namespace)}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := createDatabase(ctx, cfg.Postgres, a.database); err != nil {
		return nil, err
	}
	prop := propagation.TraceContext{}
	newTP := func(service string) (*tracerProvider, error) {
		tp, err := cfg.Telemetry.provider(ctx, cfg.Namespace, service)
		if err != nil {
			return nil, err
		}
		a.tps = append(a.tps, tp)
		return tp, nil
	}

	// pricing: a plain HTTP service without tracing.
	pricingL, err := listen()
	if err != nil {
		return nil, err
	}
	a.pricingAddr = pricingL.Addr().String()
	pricingMux := http.NewServeMux()
	pricingMux.HandleFunc("/price", func(w http.ResponseWriter, r *http.Request) {
		if !sleepCtx(r.Context(), a.settings.Load().PricingDelay) {
			return
		}
		_, _ = io.WriteString(w, `{"price": 42}`)
	})
	a.serve(pricingL, pricingMux)

	// inventory: gRPC over otelgrpc, PostgreSQL through pgx with otelpgx.
	invTP, err := newTP(ServiceInventory)
	if err != nil {
		return nil, err
	}
	a.poolTP = invTP
	a.settings.Store(&cfg.Settings)
	if err := a.setPool(ctx, cfg.Settings.DBPoolSize); err != nil {
		return nil, err
	}
	invL, err := listen()
	if err != nil {
		return nil, err
	}
	a.inventoryAddr = invL.Addr().String()
	a.grpcSrv = grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(invTP), otelgrpc.WithPropagators(prop))))
	a.grpcSrv.RegisterService(&inventoryDesc, inventoryServerFunc(a.reserve))
	a.closing.Add(1)
	go func() {
		defer a.closing.Done()
		_ = a.grpcSrv.Serve(invL)
	}()

	// orders: HTTP over otelhttp; a worker pool; calls inventory (gRPC)
	// and pricing (HTTP).
	ordTP, err := newTP(ServiceOrders)
	if err != nil {
		return nil, err
	}
	w := make(chan struct{}, cfg.Settings.Workers)
	a.workers.Store(&w)
	a.grpcCC, err = grpc.NewClient(a.inventoryAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(ordTP), otelgrpc.WithPropagators(prop))))
	if err != nil {
		return nil, fmt.Errorf("gRPC client of inventory: %w", err)
	}
	ordClient := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport.(*http.Transport).Clone(),
		otelhttp.WithTracerProvider(ordTP), otelhttp.WithPropagators(prop))}
	ordMux := http.NewServeMux()
	ordMux.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		if err := a.order(r.Context(), ordClient, r.URL.Query().Get("sku")); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, `{"ok": true}`)
	})
	ordL, err := listen()
	if err != nil {
		return nil, err
	}
	a.ordersAddr = ordL.Addr().String()
	a.serve(ordL, otelhttp.NewHandler(ordMux, ServiceOrders,
		otelhttp.WithTracerProvider(ordTP), otelhttp.WithPropagators(prop)))

	// frontend: the edge, HTTP over otelhttp; calls orders.
	feTP, err := newTP(ServiceFrontend)
	if err != nil {
		return nil, err
	}
	feClient := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport.(*http.Transport).Clone(),
		otelhttp.WithTracerProvider(feTP), otelhttp.WithPropagators(prop))}
	feMux := http.NewServeMux()
	feMux.HandleFunc("/checkout", func(w http.ResponseWriter, r *http.Request) {
		sku := r.URL.Query().Get("sku")
		if err := get(r.Context(), feClient, "http://"+a.ordersAddr+"/orders?sku="+sku); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, `{"ok": true}`)
	})
	feL, err := listen()
	if err != nil {
		return nil, err
	}
	a.frontendAddr = feL.Addr().String()
	a.serve(feL, otelhttp.NewHandler(feMux, ServiceFrontend,
		otelhttp.WithTracerProvider(feTP), otelhttp.WithPropagators(prop)))
	return a, nil
}

func databaseName(ns string) string { return sanitize(ns) }

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Set switches the instance's settings, as a redeploy with new flags
// would: the database pool is replaced when its size changes (the old
// one closes once its connections are back), the worker pool when its
// size changes.
func (a *App) Set(ctx context.Context, s Settings) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.settings.Load()
	if s.DBPoolSize != old.DBPoolSize {
		if err := a.setPool(ctx, s.DBPoolSize); err != nil {
			return err
		}
	}
	if s.Workers != old.Workers {
		w := make(chan struct{}, s.Workers)
		a.workers.Store(&w)
	}
	a.settings.Store(&s)
	return nil
}

// dbPool is a pgxpool with the requests using it: a replaced pool is
// closed once its last request is done, so no request fails on a closed
// pool.
type dbPool struct {
	*pgxpool.Pool
	users   int
	retired bool
}

func (a *App) usePool() *dbPool {
	a.poolMu.Lock()
	defer a.poolMu.Unlock()
	p := a.pool
	p.users++
	return p
}

func (a *App) releasePool(p *dbPool) {
	a.poolMu.Lock()
	p.users--
	closeNow := p.retired && p.users == 0
	a.poolMu.Unlock()
	if closeNow {
		p.Close()
	}
}

func (a *App) setPool(ctx context.Context, size int32) error {
	pc, err := pgxpool.ParseConfig(a.cfg.Postgres.DSN(a.database, a.database))
	if err != nil {
		return err
	}
	pc.MaxConns = size
	pc.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(a.poolTP))
	p, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("pgxpool for %s: %w", a.database, err)
	}
	a.poolMu.Lock()
	old := a.pool
	a.pool = &dbPool{Pool: p}
	closeNow := false
	if old != nil {
		old.retired = true
		closeNow = old.users == 0
	}
	a.poolMu.Unlock()
	if closeNow {
		old.Close()
	}
	return nil
}

// reserve is the inventory service's gRPC method: one query on the pool.
func (a *App) reserve(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.Int64Value, error) {
	sku, _ := strconv.Atoi(in.GetValue())
	var count int64
	sleep := a.settings.Load().DBQuerySleep.Seconds()
	p := a.usePool()
	defer a.releasePool(p)
	err := p.QueryRow(ctx,
		"SELECT s.count FROM stock s, pg_sleep($1) WHERE s.sku = $2", sleep, sku%100+1).Scan(&count)
	if err != nil {
		return nil, err
	}
	return wrapperspb.Int64(count), nil
}

// order is the orders service's handler: it waits for a worker, works,
// then asks inventory and pricing.
func (a *App) order(ctx context.Context, c *http.Client, sku string) error {
	w := *a.workers.Load()
	select {
	case w <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	ok := sleepCtx(ctx, a.settings.Load().WorkTime)
	<-w
	if !ok {
		return ctx.Err()
	}
	out := new(wrapperspb.Int64Value)
	if err := a.grpcCC.Invoke(ctx, "/"+inventoryServiceName+"/Reserve", wrapperspb.String(sku), out); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return get(ctx, c, "http://"+a.pricingAddr+"/price?sku="+sku)
}

func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func (a *App) serve(l net.Listener, h http.Handler) {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	a.servers = append(a.servers, s)
	a.closing.Add(1)
	go func() {
		defer a.closing.Done()
		_ = s.Serve(l)
	}()
}

// FrontendURL is the edge's checkout URL.
func (a *App) FrontendURL() string { return "http://" + a.frontendAddr + "/checkout" }

// Close stops the services and flushes their telemetry.
func (a *App) Close() {
	for _, s := range a.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	if a.grpcSrv != nil {
		a.grpcSrv.GracefulStop()
	}
	if a.grpcCC != nil {
		_ = a.grpcCC.Close()
	}
	a.closing.Wait()
	a.poolMu.Lock()
	p := a.pool
	a.pool = nil
	a.poolMu.Unlock()
	if p != nil {
		p.Close()
	}
	for _, tp := range a.tps {
		_ = tp.shutdown()
	}
}

// Load sends requests to the edge at rate per second with exponentially
// distributed gaps until ctx ends; it returns the requests sent and
// failed. At most maxInFlight are outstanding; beyond it requests are
// skipped and counted as failed.
func Load(ctx context.Context, url string, rate float64, seed uint64) (sent, failed int64) {
	const maxInFlight = 200
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	client := &http.Client{Timeout: 10 * time.Second}
	var inFlight atomic.Int64
	var nFailed atomic.Int64
	var wg sync.WaitGroup
	next := time.Now()
	for i := 0; ; i++ {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		if !sleepCtx(ctx, time.Until(next)) {
			break
		}
		sent++
		if inFlight.Load() >= maxInFlight {
			nFailed.Add(1)
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func(sku int) {
			defer wg.Done()
			defer inFlight.Add(-1)
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := get(rctx, client, url+"?sku="+strconv.Itoa(sku)); err != nil {
				nFailed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	return sent, nFailed.Load()
}

// ---- the inventory gRPC service, declared by hand (no generated code):
// one unary method taking and returning well-known wrapper messages.

const inventoryServiceName = "junction.realapp.v1.Inventory"

type inventoryServer interface {
	Reserve(context.Context, *wrapperspb.StringValue) (*wrapperspb.Int64Value, error)
}

type inventoryServerFunc func(context.Context, *wrapperspb.StringValue) (*wrapperspb.Int64Value, error)

func (f inventoryServerFunc) Reserve(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.Int64Value, error) {
	return f(ctx, in)
}

var inventoryDesc = grpc.ServiceDesc{
	ServiceName: inventoryServiceName,
	HandlerType: (*inventoryServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Reserve",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(inventoryServer).Reserve(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + inventoryServiceName + "/Reserve"}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(inventoryServer).Reserve(ctx, req.(*wrapperspb.StringValue))
			})
		},
	}},
	Metadata: "realapp",
}
