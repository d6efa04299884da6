//go:build windows

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/graphrelay/graphrelay/config"
)

const serviceUsage = `Usage: graphrelay service <command> [--config FILE] [--name NAME]

Commands (from an elevated prompt):
  install     register the service (automatic start, restart on failure) and
              its event log source
  uninstall   stop and remove the service and its event log source
  start       start the service and wait until it runs
  stop        stop the service; open SMTP sessions may finish first
  reload      reload log.level and the TLS certificate (what
              "sc.exe control graphrelay paramchange" does)
  run         what the service control manager starts; not for a console

Flags:
  --config FILE   configuration for install (default: graphrelay.yaml beside
                  graphrelay.exe, else %ProgramData%\graphrelay\graphrelay.yaml);
                  relative paths in it, such as outbox_dir, are relative to
                  its directory
  --name NAME     service and event log source name (default graphrelay)
`

// defaultConfigFile is graphrelay.yaml beside graphrelay.exe when there is
// one (everything in one folder), else where the MSI puts it,
// %ProgramData%\graphrelay\graphrelay.yaml.
func defaultConfigFile() string {
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), "graphrelay.yaml")
		if _, err := os.Stat(beside); err == nil {
			return beside
		}
	}
	return filepath.Join(config.ProgramData(), "graphrelay", "graphrelay.yaml")
}

func serviceCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, serviceUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("service "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serviceUsage) }
	cfgPath := fs.String("config", "", "configuration `file`")
	name := fs.String("name", "graphrelay", "service `name`")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return 2
	}
	var err error
	switch sub {
	case "install":
		err = installService(*name, *cfgPath, stdout)
	case "uninstall":
		err = uninstallService(*name, stdout)
	case "start":
		err = startService(*name, stdout)
	case "stop":
		err = stopService(*name, stdout)
	case "reload":
		err = reloadService(*name, stdout)
	case "run":
		return runService(*name, *cfgPath, stderr)
	default:
		fmt.Fprintf(stderr, "graphrelay service: unknown command %q\n\n%s", sub, serviceUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay service %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// connect opens the service control manager; only administrators may.
func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("cannot open the service control manager (run from an elevated prompt): %w", err)
	}
	return m, nil
}

func installService(name, cfgPath string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if cfgPath == "" {
		cfgPath = defaultConfigFile()
	}
	if cfgPath, err = filepath.Abs(cfgPath); err != nil {
		return err
	}
	if _, err := os.Stat(cfgPath); err != nil {
		fmt.Fprintf(stdout, "note: %s does not exist yet; write it before starting the service\n", cfgPath)
	}
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s, err := m.OpenService(name); err == nil {
		s.Close()
		return fmt.Errorf("service %s already exists (uninstall it first)", name)
	}
	s, err := m.CreateService(name, exe, mgr.Config{
		DisplayName: "graphrelay SMTP relay (" + name + ")",
		Description: "Accepts SMTP from devices and applications and relays it through Microsoft Graph.",
		StartType:   mgr.StartAutomatic,
		// Delayed start lets the network and DNS come up first, so the first
		// token request does not fail at boot.
		DelayedAutoStart: true,
	}, "service", "run", "--name", name, "--config", cfgPath)
	if err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	defer s.Close()
	// Restart after a crash or a failed start, like systemd's
	// Restart=on-failure, with growing delays so a broken configuration
	// does not spin.
	actions := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 2 * time.Minute},
	}
	if err := s.SetRecoveryActions(actions, uint32((24 * time.Hour).Seconds())); err != nil {
		s.Delete()
		return fmt.Errorf("set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		s.Delete()
		return fmt.Errorf("set recovery actions: %w", err)
	}
	// A source left behind by an earlier install would make this fail.
	eventlog.Remove(name)
	if err := eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		s.Delete()
		return fmt.Errorf("register the event log source: %w", err)
	}
	fmt.Fprintf(stdout, "installed service %s: %s service run --config %s\n"+
		"logs go to the Application event log, source %s; start it with: graphrelay service start\n",
		name, exe, cfgPath, name)
	return nil
}

func uninstallService(name string, stdout io.Writer) error {
	m, s, err := openService(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := controlAndWait(s, svc.Stop, svc.Stopped); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service: %w", err)
	}
	if err := eventlog.Remove(name); err != nil {
		fmt.Fprintf(stdout, "note: event log source %s not removed: %v\n", name, err)
	}
	fmt.Fprintf(stdout, "removed service %s\n", name)
	return nil
}

func startService(name string, stdout io.Writer) error {
	m, s, err := openService(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	st, err := waitState(s, 30*time.Second, svc.Running, svc.Stopped)
	if err != nil {
		return err
	}
	if st.State != svc.Running {
		return fmt.Errorf("service %s stopped right after starting (exit code %d): see the Application event log, source %s",
			name, st.ServiceSpecificExitCode, name)
	}
	fmt.Fprintf(stdout, "service %s is running\n", name)
	return nil
}

func stopService(name string, stdout io.Writer) error {
	m, s, err := openService(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := controlAndWait(s, svc.Stop, svc.Stopped); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "service %s stopped\n", name)
	return nil
}

// reloadService sends the service a parameter change, its SIGHUP. The
// service manager refuses it unless the service runs and accepts it.
func reloadService(name string, stdout io.Writer) error {
	m, s, err := openService(name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if _, err := s.Control(svc.ParamChange); err != nil {
		return fmt.Errorf("paramchange: %w", err)
	}
	fmt.Fprintf(stdout, "service %s reloads log.level and the TLS certificate; see the Application event log\n", name)
	return nil
}

// stopWait covers smtp.shutdown_timeout (30s by default) and the delivery
// side's own drain, with margin.
const stopWait = 2 * time.Minute

func controlAndWait(s *mgr.Service, c svc.Cmd, want svc.State) error {
	if _, err := s.Control(c); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	st, err := waitState(s, stopWait, want)
	if err != nil {
		return err
	}
	if st.State != want {
		return fmt.Errorf("service is in state %d, not %d", st.State, want)
	}
	return nil
}

// waitState polls until the service reaches one of the states.
func waitState(s *mgr.Service, timeout time.Duration, states ...svc.State) (svc.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.Query()
		if err != nil {
			return st, fmt.Errorf("query: %w", err)
		}
		for _, want := range states {
			if st.State == want {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("timed out after %s waiting for the service (state %d)", timeout, st.State)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// runService is what the service control manager starts. Whether it was
// is known from svc.Run itself, which fails at once with
// ERROR_FAILED_SERVICE_CONTROLLER_CONNECT in a console; svc.IsWindowsService
// guesses from the parent process and the session instead, and guesses
// wrong under Wine's service manager.
func runService(name, cfgPath string, stderr io.Writer) int {
	elog, err := eventlog.Open(name)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay service run: cannot open the event log source %s: %v\n", name, err)
		return 1
	}
	defer elog.Close()
	err = svc.Run(name, &relayService{cfgPath: cfgPath, elog: elog})
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		fmt.Fprintln(stderr, `graphrelay service run: only the Windows service manager runs this; in a console use "graphrelay serve"`)
		return 2
	}
	if err != nil {
		elog.Error(eventIDError, "the service could not run: "+err.Error())
		return 1
	}
	return 0
}

// relayService runs the same App as "graphrelay serve", with the event log
// instead of stderr and service controls instead of signals.
type relayService struct {
	cfgPath string
	elog    *eventlog.Log
}

// Service-specific exit codes, shown by "sc query" and in the SCM's event.
const (
	svcExitConfig   = 1
	svcExitStart    = 2
	svcExitShutdown = 3
)

func (s *relayService) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	// The service manager starts services in System32. Relative paths in
	// the configuration (outbox_dir ./outbox, tls.self_signed_dir ./tls) are
	// meant beside the configuration file.
	if s.cfgPath != "" {
		if err := os.Chdir(filepath.Dir(s.cfgPath)); err != nil {
			s.elog.Error(eventIDError, "cannot enter the configuration's directory: "+err.Error())
			return true, svcExitConfig
		}
	}
	cfg, err := config.Load(s.cfgPath, os.Environ())
	if err != nil {
		s.elog.Error(eventIDError, fmt.Sprintf("graphrelay: %v", err))
		return true, svcExitConfig
	}
	var level slog.LevelVar
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(newEventLogHandler(s.elog, &level))
	app := NewApp(cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := app.Start(ctx); err != nil {
		log.Error("startup failed", "err", err)
		return true, svcExitStart
	}
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown | svc.AcceptParamChange}
	for c := range req {
		switch c.Cmd {
		case svc.Interrogate:
			status <- c.CurrentStatus
		case svc.ParamChange:
			// "sc control graphrelay paramchange" is the service's SIGHUP.
			log.Info("parameter change: reloading the log level and the TLS certificate")
			reloadLogLevel(s.cfgPath, &level, log)
			app.Reload()
		case svc.Stop:
			return s.stop(app, cfg, log, status, stopBudget(cfg, false))
		case svc.Shutdown:
			return s.stop(app, cfg, log, status, stopBudget(cfg, true))
		}
	}
	return s.stop(app, cfg, log, status, stopBudget(cfg, false))
}

// shutdownBudget is what the service takes to stop when Windows itself
// shuts down. Windows waits only WaitToKillServiceTimeout for its services
// then (5 to 20 seconds, by version), so a long smtp.shutdown_timeout is
// cut short; what is cut short loses nothing, because every acknowledged
// message is in the spool and an attempt under way is resumed, as
// interrupted, at the next start.
const shutdownBudget = 5 * time.Second

// stopBudget is how long a stop may take: smtp.shutdown_timeout for the
// sessions plus time for the deliveries under way, or shutdownBudget at
// a system shutdown.
func stopBudget(cfg *config.Config, systemShutdown bool) time.Duration {
	if systemShutdown {
		return min(shutdownBudget, cfg.SMTP.ShutdownTimeout.D())
	}
	return cfg.SMTP.ShutdownTimeout.D() + 15*time.Second
}

// stop lets open sessions finish as serve does on SIGTERM, for at most
// budget. The service manager is told every second that the stop is
// progressing (a new CheckPoint), so it does not take a long drain for a
// hung service; once budget is spent the service reports itself stopped
// and the process ends with the drain unfinished.
func (s *relayService) stop(app *App, cfg *config.Config, log *slog.Logger, status chan<- svc.Status, budget time.Duration) (bool, uint32) {
	const tick = time.Second
	pending := func(checkpoint uint32) svc.Status {
		return svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32((2 * tick).Milliseconds())}
	}
	status <- pending(1)
	log.Info("shutting down", "deadline", budget.String())
	done := make(chan error, 1)
	go func() { done <- app.Close() }()
	t := time.NewTicker(tick)
	defer t.Stop()
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	for checkpoint := uint32(2); ; checkpoint++ {
		select {
		case err := <-done:
			if err != nil {
				log.Error("shutdown", "err", err)
				return true, svcExitShutdown
			}
			log.Info("stopped")
			return false, 0
		case <-t.C:
			status <- pending(checkpoint)
		case <-deadline.C:
			log.Warn("stopping before the drain ended; what was under way resumes at the next start",
				"budget", budget.String(), "hint", "acknowledged mail is in the spool; attempts cut short are retried and may arrive twice")
			return false, 0
		}
	}
}

// openService connects to the service manager and opens the named service.
func openService(name string) (*mgr.Mgr, *mgr.Service, error) {
	m, err := connect()
	if err != nil {
		return nil, nil, err
	}
	s, err := m.OpenService(name)
	if err != nil {
		m.Disconnect()
		return nil, nil, fmt.Errorf("service %s is not installed: %w", name, err)
	}
	return m, s, nil
}
