package ring_test

import (
	"fmt"

	"github.com/stratum-store/stratum/ring"
)

func Example() {
	nodes := []ring.Node{
		{ID: "n1", Addr: "10.0.0.1:7000", Zone: "a"},
		{ID: "n2", Addr: "10.0.0.2:7000", Zone: "b"},
		{ID: "n3", Addr: "10.0.0.3:7000", Zone: "c"},
		{ID: "n4", Addr: "10.0.0.4:7000", Zone: "a"},
	}
	r, err := ring.New(7, nodes, ring.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	key := []byte("ce013625030ba8dba906f756967f9e9ca394464a")
	for i, n := range r.Replicas(key) {
		fmt.Println(i, n.ID, n.Addr, n.Zone)
	}
	fmt.Println("n4 owns it:", r.Owns("n4", key))
	// Output:
	// 0 n2 10.0.0.2:7000 b
	// 1 n4 10.0.0.4:7000 a
	// 2 n3 10.0.0.3:7000 c
	// n4 owns it: true
}
