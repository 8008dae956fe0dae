package store_test

import (
	"context"
	"fmt"
	"os"

	"github.com/stratum-store/stratum/api/objid"
	"github.com/stratum-store/stratum/datanode/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "stratum-store-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(store.DefaultConfig(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	ctx := context.Background()
	data := []byte("blob 11\x00hello world")
	oid, _ := objid.Digest(objid.SHA1, data)
	created, err := st.Put(ctx, oid, data)
	fmt.Println(created, err)
	created, err = st.Put(ctx, oid, data)
	fmt.Println(created, err)

	obj, err := st.Get(ctx, oid)
	fmt.Printf("%d bytes %q %v\n", obj.Size, obj.Data, err)
	fmt.Printf("%+v\n", st.Stats())
	// Output:
	// true <nil>
	// false <nil>
	// 19 bytes "blob 11\x00hello world" <nil>
	// {Objects:1 Bytes:19}
}
