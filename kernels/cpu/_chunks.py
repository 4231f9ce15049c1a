"""How parallel kernels split their work."""
import numba


def nchunks(n_items):
    """Number of chunks for n_items units of independent work: one per Numba thread, at most n_items."""
    return max(1, min(numba.get_num_threads(), n_items))
