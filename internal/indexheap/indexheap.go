// Package indexheap is a container/heap of items that keep their own index,
// so that heap.Fix and heap.Remove find them. The envelope's replay Guard
// and the mock server's session expiry use it.
package indexheap

// Heap implements heap.Interface over Items: Before orders them, and Index
// points at the int in which an item keeps its index (-1 once popped).
type Heap[T any] struct {
	Items  []T
	Before func(a, b T) bool
	Index  func(T) *int
}

func (h *Heap[T]) Len() int           { return len(h.Items) }
func (h *Heap[T]) Less(i, j int) bool { return h.Before(h.Items[i], h.Items[j]) }
func (h *Heap[T]) Swap(i, j int) {
	h.Items[i], h.Items[j] = h.Items[j], h.Items[i]
	*h.Index(h.Items[i]), *h.Index(h.Items[j]) = i, j
}

// Push implements heap.Interface; x must be a T.
func (h *Heap[T]) Push(x any) {
	*h.Index(x.(T)) = len(h.Items)
	h.Items = append(h.Items, x.(T))
}

// Pop implements heap.Interface.
func (h *Heap[T]) Pop() any {
	var zero T
	n := len(h.Items) - 1
	x := h.Items[n]
	h.Items[n] = zero
	h.Items = h.Items[:n]
	*h.Index(x) = -1
	return x
}
