package pack

import "container/list"

// lru is a byte-bounded LRU cache of resolved object bodies by entry index.
type lru struct {
	max, size int64
	ll        *list.List
	m         map[int]*list.Element
}

type lruItem struct {
	key  int
	body []byte
}

func newLRU(max int64) *lru { return &lru{max: max, ll: list.New(), m: make(map[int]*list.Element)} }

func (c *lru) get(k int) ([]byte, bool) {
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem).body, true
	}
	return nil, false
}

// add keeps body unless it alone is over the bound; the caller must not
// modify body afterwards.
func (c *lru) add(k int, body []byte) {
	if int64(len(body)) > c.max/4 {
		return
	}
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = c.ll.PushFront(&lruItem{k, body})
	c.size += int64(len(body))
	for c.size > c.max {
		e := c.ll.Back()
		it := e.Value.(*lruItem)
		c.ll.Remove(e)
		delete(c.m, it.key)
		c.size -= int64(len(it.body))
	}
}
