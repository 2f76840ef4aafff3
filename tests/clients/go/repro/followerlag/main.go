// Minimal reproduction for go-zookeeper's TestBasicCluster failure ("Get failed on node 2: zk: node
// does not exist"): one session creates a znode through member A, and as soon as the create's
// reply arrives a second session reads it through member B. TestBasicCluster does this once and
// fails when B answers NoNode. This program does it -n times and reports how often B answered
// NoNode, and how long B took to show the node in those cases.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run main.go 127.0.0.1:25501 127.0.0.1:25502
//	(run by followerlag.sh, which starts the ensemble)
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

type quiet struct{}

func (quiet) Printf(string, ...interface{}) {}

func main() {
	n := flag.Int("n", 200, "iterations")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: followerlag [-n N] writer-host:port reader-host:port")
		os.Exit(2)
	}
	dial := func(addr string) *zk.Conn {
		c, _, err := zk.Connect([]string{addr}, 15*time.Second, zk.WithLogger(quiet{}))
		if err != nil {
			panic(err)
		}
		return c
	}
	w, r := dial(flag.Arg(0)), dial(flag.Arg(1))
	defer w.Close()
	defer r.Close()
	if _, _, err := r.Get("/"); err != nil { // wait for both sessions
		panic(err)
	}
	time.Sleep(time.Second)
	base := fmt.Sprintf("/lag-%d", time.Now().UnixNano())
	if _, err := w.Create(base, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		panic(err)
	}
	var stale []time.Duration
	for i := 0; i < *n; i++ {
		p := fmt.Sprintf("%s/n%d", base, i)
		if _, err := w.Create(p, []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			panic(err)
		}
		t0 := time.Now()
		_, _, err := r.Get(p)
		if err == zk.ErrNoNode {
			for err == zk.ErrNoNode && time.Since(t0) < 10*time.Second {
				time.Sleep(time.Millisecond)
				_, _, err = r.Get(p)
			}
			stale = append(stale, time.Since(t0))
		} else if err != nil {
			panic(err)
		}
		if i%10 == 9 {
			time.Sleep(100 * time.Millisecond) // idle gaps, as between TestBasicCluster's steps
		}
	}
	sort.Slice(stale, func(i, j int) bool { return stale[i] < stale[j] })
	fmt.Printf("create via %s, then get via %s: %d of %d gets answered NoNode", flag.Arg(0), flag.Arg(1), len(stale), *n)
	if len(stale) > 0 {
		fmt.Printf("; the node showed up after median %v, max %v", stale[len(stale)/2].Round(time.Microsecond), stale[len(stale)-1].Round(time.Microsecond))
	}
	fmt.Println()
}
