// authbench measures what identity costs Switchboard, against a running server:
//
//	handshakes: connections per second that open /ws, are welcomed, send auth with a token (or none) and close,
//	            and the server's CPU per handshake (from /proc/PID/stat);
//	bcast:      N receive-only sockets on /subscribe/CHANNEL (with a bearer token, or none) and one publisher
//	            POSTing RATE messages/s to /publish/CHANNEL; deliveries per server CPU-second.
//
// Build offline against Debian's gorilla/websocket (golang-github-gorilla-websocket-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/authbench .
//
// Tokens are given in files (one per line, used round-robin), made with `switchboard token`.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	user, _ := strconv.ParseFloat(fields[11], 64)
	system, _ := strconv.ParseFloat(fields[12], 64)
	return (user + system) / 100 // clock ticks; 100 per second on Linux
}

func tokens(path string) []string {
	if path == "" {
		return []string{""}
	}
	file, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer file.Close()
	var list []string
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<16), 1<<16)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			list = append(list, line)
		}
	}
	return list
}

func handshakes(addr string, pid int, list []string, workers int, duration time.Duration) {
	var done, failed int64
	stop := time.Now().Add(duration)
	start := cpuSeconds(pid)
	began := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			dialer := websocket.Dialer{Subprotocols: []string{"switchboard.chat.v1"}}
			for n := w; time.Now().Before(stop); n += workers {
				if err := oneHandshake(&dialer, addr, list[n%len(list)]); err != nil {
					atomic.AddInt64(&failed, 1)
					continue
				}
				atomic.AddInt64(&done, 1)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	cpu := cpuSeconds(pid) - start
	fmt.Printf("handshakes/s %.0f  server CPU-s %.2f  server µs/handshake %.1f  failed %d\n",
		float64(done)/elapsed, cpu, cpu/float64(done)*1e6, failed)
}

func oneHandshake(dialer *websocket.Dialer, addr, token string) error {
	conn, _, err := dialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	var welcome map[string]any
	if err := conn.ReadJSON(&welcome); err != nil {
		return err
	}
	if token != "" {
		if err := conn.WriteJSON(map[string]string{"type": "auth", "token": token}); err != nil {
			return err
		}
		var reply map[string]any
		if err := conn.ReadJSON(&reply); err != nil {
			return err
		}
		if reply["type"] != "authenticated" {
			return fmt.Errorf("refused: %v", reply)
		}
	}
	return conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
}

func bcast(addr string, pid int, list []string, subs int, rate float64, duration time.Duration, key, channel string) {
	var received int64
	var conns []*websocket.Conn
	for i := 0; i < subs; i++ {
		header := http.Header{}
		if token := list[i%len(list)]; token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/subscribe/"+channel, header)
		if err != nil {
			panic(err)
		}
		conns = append(conns, conn)
		go func(c *websocket.Conn) {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				atomic.AddInt64(&received, 1)
			}
		}(conn)
	}
	time.Sleep(time.Second)
	client := &http.Client{}
	start := cpuSeconds(pid)
	began := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	sent := 0
	for next := began; time.Since(began) < duration; next = next.Add(interval) {
		time.Sleep(time.Until(next))
		request, _ := http.NewRequest("POST", "http://"+addr+"/publish/"+channel, strings.NewReader(fmt.Sprintf("message %d of the benchmark, 64 bytes or so ......", sent)))
		request.Header.Set("Authorization", "Bearer "+key)
		response, err := client.Do(request)
		if err != nil || response.StatusCode != 204 {
			panic(fmt.Sprintf("publish: %v %v", err, response))
		}
		response.Body.Close()
		sent++
	}
	time.Sleep(time.Second) // in-flight deliveries
	cpu := cpuSeconds(pid) - start
	got := atomic.LoadInt64(&received)
	expected := int64(sent * subs)
	fmt.Printf("deliveries %d of %d (loss %.3f%%)  server CPU-s %.2f  deliveries per server CPU-s %.0f\n",
		got, expected, 100*float64(expected-got)/float64(expected), cpu, float64(got)/cpu)
	for _, c := range conns {
		c.Close()
	}
}

func main() {
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:8080", "server address")
	pid := flags.Int("pid", 0, "server PID, for its CPU time")
	tokenFile := flags.String("tokens", "", "a file of tokens, one per line (none: anonymous)")
	workers := flags.Int("workers", 16, "handshakes: concurrent clients")
	duration := flags.Duration("duration", 10*time.Second, "measurement time")
	subs := flags.Int("subs", 1000, "bcast: subscribers")
	rate := flags.Float64("rate", 100, "bcast: messages per second")
	key := flags.String("key", "", "bcast: the publish key")
	channel := flags.String("channel", "news", "bcast: the channel")
	flags.Parse(os.Args[2:])
	switch mode {
	case "handshakes":
		handshakes(*addr, *pid, tokens(*tokenFile), *workers, *duration)
	case "bcast":
		bcast(*addr, *pid, tokens(*tokenFile), *subs, *rate, *duration, *key, *channel)
	default:
		fmt.Println("usage: authbench handshakes|bcast [flags]")
		os.Exit(64)
	}
}
