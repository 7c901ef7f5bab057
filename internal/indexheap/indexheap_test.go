package indexheap

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type item struct{ key, idx int }

// TestOrderAndIndex: every item knows its place after each operation, Fix
// and Remove find items by it, and the items come out in order.
func TestOrderAndIndex(t *testing.T) {
	h := &Heap[*item]{
		Before: func(a, b *item) bool { return a.key < b.key },
		Index:  func(it *item) *int { return &it.idx },
	}
	r := rand.New(rand.NewPCG(1, 2))
	var all []*item
	for range 200 {
		it := &item{key: r.IntN(1000)}
		all = append(all, it)
		heap.Push(h, it)
	}
	indexed := func() {
		for i, it := range h.Items {
			require.Equal(t, i, it.idx)
		}
	}
	indexed()
	for _, it := range all[:50] {
		it.key = r.IntN(1000)
		heap.Fix(h, it.idx)
	}
	indexed()
	for _, it := range all[50:100] {
		heap.Remove(h, it.idx)
		assert.Equal(t, -1, it.idx)
	}
	indexed()
	var keys []int
	for h.Len() > 0 {
		it := heap.Pop(h).(*item)
		assert.Equal(t, -1, it.idx)
		keys = append(keys, it.key)
	}
	assert.Len(t, keys, 150)
	assert.True(t, slices.IsSorted(keys))
}
