"""The HSK tensor functions' public names at their first import path; they live in `hskd.hsk.compression`."""

from hskd.hsk.compression import HSKBatch, compress_batch, hsk_loss, real_fraction, select_tokens, width_mask

__all__ = ["HSKBatch", "compress_batch", "hsk_loss", "real_fraction", "select_tokens", "width_mask"]
