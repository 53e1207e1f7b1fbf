package loope

// withThreads runs f with Threads() = n and restores the previous setting.
func withThreads(n int, f func()) {
	prev := int(threads.Load())
	defer SetThreads(prev)
	SetThreads(n)
	f()
}

// rowColSizes are (rows, cols) shapes for the reduction kernels: tiny, odd,
// and large enough (rows·cols ≥ 2·parGrain) to take the parallel paths.
var rowColSizes = [][2]int{{1, 1}, {1, 7}, {3, 5}, {5, 1}, {37, 13}, {1000, 64}, {3001, 67}, {12608 / 8, 192}}
