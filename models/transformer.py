"""The accompaniment transformer: a small causal decoder over multi-stream positions
with sliding-window attention, learned attention sinks and a fixed-size KV cache.

Shapes: B batch, T positions, S streams, V = MAX_VOCAB, d = d_model, H heads,
Dh = d / H, L layers, W window (positions a query attends to, itself included),
N sink slots per layer.

- Input of a position: sum of its S token embeddings (+ optional per-stream pitch-class
  embeddings) + style embedding + metric position embedding (meta = (style_id, metric_id)).
- Attention: query i sees keys j with 0 <= i - j < W, plus N learned sink key/values
  per layer (as in Magenta RT 2 / StreamingLLM), so there is always somewhere to put
  attention mass when the window holds little. Positions enter only as an ALiBi bias
  ``-slope_h * (i - j)`` on distances inside the window: it depends on distances, not
  on absolute indices, so a rolled cache gives exactly the same scores.
- Training (``forward``) computes the window in blocks of W queries against the
  previous and current block of keys (memory O(T * W), exact), the very mask the
  streaming cache implements.
- Streaming (``step``) is functional over explicit cache arrays (k, v, pos, n) so the
  same code runs in torch (copied into preallocated buffers in place, see
  ``KVCache``) and as an ONNX graph with the cache as inputs/outputs.
- Output: one head per stream, logits padded to V with -inf for ids outside that
  stream's vocabulary and for ids that are never targets (PAD, CHORD_UNKNOWN).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.pattern import Pattern
from models.tokens import CHORD, CHORD_UNKNOWN, MAX_VOCAB, METRIC_VOCAB, NUM_STREAMS, PAD, STYLES, VOCAB_SIZES


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = 4
    n_head: int = 6
    d_model: int = 192
    window: int = 128  # W: attention window in positions (= KV cache length)
    n_sink: int = 4  # learned sink key/values per layer
    mlp_ratio: int = 4
    dropout: float = 0.1
    # Add a per-stream pitch-class embedding (note pitch % 12, chord root) to the token
    # embedding: octaves share it, so melody/chord/voice relations are 12-dimensional
    # instead of 128-dimensional and are learnt far sooner. Zero-initialised.
    pitch_classes: bool = False
    num_streams: int = NUM_STREAMS
    vocab_sizes: tuple[int, ...] = VOCAB_SIZES
    max_vocab: int = MAX_VOCAB
    num_styles: int = len(STYLES)
    metric_vocab: int = METRIC_VOCAB
    pattern: Pattern = field(default_factory=Pattern)

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.window < 1 or self.n_sink < 1 or self.n_layer < 1:
            raise ValueError("window, n_sink and n_layer must be >= 1")
        if len(self.vocab_sizes) != self.num_streams or max(self.vocab_sizes) > self.max_vocab:
            raise ValueError("vocab_sizes must give one size <= max_vocab per stream")
        if self.pattern.num_streams != self.num_streams:
            raise ValueError("pattern and model disagree on the number of streams")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_json(self) -> str:
        d = asdict(self)
        d["pattern"] = self.pattern.to_dict()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        d = json.loads(text)
        d["pattern"] = Pattern.from_dict(d["pattern"])
        d["vocab_sizes"] = tuple(d["vocab_sizes"])
        return cls(**d)


def pitch_class_index(cfg: "ModelConfig") -> torch.Tensor:
    """(S*V,) int64: for stream s and token x, the row s*13 + pitch class of x (note
    streams: (x - NOTE_BASE) % 12; chord: the root), or s*13 + 12 when x has none."""
    from models.tokens import CHORD_BASE, NOTE_BASE, QUALITIES

    S, V = cfg.num_streams, cfg.max_vocab
    idx = torch.empty(S, V, dtype=torch.long)
    for s in range(S):
        for x in range(V):
            if s == CHORD:
                pc = (x - CHORD_BASE) // len(QUALITIES) if x >= CHORD_BASE else 12
            else:
                pc = (x - NOTE_BASE) % 12 if x >= NOTE_BASE else 12
            idx[s, x] = s * 13 + (pc if 0 <= pc < 12 else 12)
    return idx.view(-1)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """(H,) geometric slopes 2^(-8 h / H): some heads look far back, some very near."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / n_head) for h in range(n_head)])


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        H, Dh, N = cfg.n_head, cfg.head_dim, cfg.n_sink
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.sink_k = nn.Parameter(torch.randn(H, N, Dh) * 0.02)  # (H, N, Dh)
        self.sink_v = nn.Parameter(torch.zeros(H, N, Dh))  # (H, N, Dh)
        self.scale = 1.0 / math.sqrt(Dh)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., T, d) -> q, k, v each (..., H, T, Dh)."""
        *lead, T, _ = x.shape
        qkv = self.qkv(x).view(*lead, T, 3, self.cfg.n_head, self.cfg.head_dim)
        q, k, v = qkv.unbind(-3)
        return q.transpose(-3, -2), k.transpose(-3, -2), v.transpose(-3, -2)

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor,
        sink_k: torch.Tensor,
        sink_v: torch.Tensor,
    ) -> torch.Tensor:
        """q (..., Q, Dh), k/v (..., K, Dh), sink_k/v (..., N, Dh) broadcastable to k's
        leading dims, bias (..., Q, N + K) with the sinks' columns first -> (..., Q, Dh)."""
        lead = k.shape[:-2]
        k = torch.cat([sink_k.expand(*lead, *sink_k.shape[-2:]), k], dim=-2)  # (..., N + K, Dh)
        v = torch.cat([sink_v.expand(*lead, *sink_v.shape[-2:]), v], dim=-2)
        # no dropout on attention weights: on a CPU it costs a tenth of a training step
        if q.shape[-2] > 1:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        # one query (streaming): plain math, which every ONNX exporter maps faithfully
        att = torch.softmax((q @ k.transpose(-1, -2)) * self.scale + bias, dim=-1)
        return att @ v

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, T, d) with T a multiple of W; bias (H, nb, W, N + 2W) -> (B, T, d)."""
        B, T, d = x.shape
        W = self.cfg.window
        nb = T // W
        q, k, v = self._split(x)  # (B, H, T, Dh)
        q = q.reshape(B, -1, nb, W, q.shape[-1])  # (B, H, nb, W, Dh)
        k = k.reshape(B, -1, nb, W, k.shape[-1])
        v = v.reshape(B, -1, nb, W, v.shape[-1])
        # keys of block b = block b-1 (zeros before the start, masked by bias) + block b
        k2 = torch.cat([F.pad(k, (0, 0, 0, 0, 1, 0))[:, :, :-1], k], dim=3)  # (B, H, nb, 2W, Dh)
        v2 = torch.cat([F.pad(v, (0, 0, 0, 0, 1, 0))[:, :, :-1], v], dim=3)
        sk, sv = self.sink_k[None, :, None], self.sink_v[None, :, None]  # (1, H, 1, N, Dh)
        y = self._attend(q, k2, v2, bias, sk, sv)  # (B, H, nb, W, Dh)
        y = y.reshape(B, -1, T, y.shape[-1]).transpose(1, 2).reshape(B, T, d)
        out: torch.Tensor = self.proj(y)
        return out

    def step(
        self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, write: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One position. x (1, d); k_cache/v_cache (H, W, Dh); write (1, W, 1) bool marks the
        slot this position goes to; bias (H, 1, W) -> y (1, d), new k_cache, new v_cache."""
        q, k, v = self._split(x)  # (H, 1, Dh)
        k_cache = torch.where(write, k, k_cache)  # (H, W, Dh)
        v_cache = torch.where(write, v, v_cache)
        y = self._attend(q, k_cache, v_cache, bias, self.sink_k, self.sink_v)  # (H, 1, Dh)
        return self.proj(y.transpose(0, 1).reshape(1, -1)), k_cache, v_cache


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), bias)
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out

    def step(
        self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, write: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, k_cache, v_cache = self.attn.step(self.ln1(x), k_cache, v_cache, write, bias)
        x = x + a
        return x + self.mlp(self.ln2(x)), k_cache, v_cache


class Transformer(nn.Module):
    # buffers (register_buffer), named here for the type checker
    pc_index: torch.Tensor
    vocab_mask: torch.Tensor
    stream_offset: torch.Tensor
    slopes: torch.Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        S, V, d = cfg.num_streams, cfg.max_vocab, cfg.d_model
        self.tok_emb = nn.Embedding(S * V, d)  # stream s, token x -> row s*V + x
        if cfg.pitch_classes:
            # row s*13 + pitch class (12 = none: rest, hold, pad, no chord)
            self.pc_emb = nn.Embedding(S * 13, d)
            self.register_buffer("pc_index", pitch_class_index(cfg), persistent=False)  # (S*V,)
        self.style_emb = nn.Embedding(cfg.num_styles, d)
        self.metric_emb = nn.Embedding(cfg.metric_vocab, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, S * V, bias=False)
        mask = torch.full((S, V), float("-inf"))
        for s, n in enumerate(cfg.vocab_sizes):
            mask[s, :n] = 0.0
        mask[:, PAD] = float("-inf")
        mask[CHORD, CHORD_UNKNOWN] = float("-inf")
        self.register_buffer("vocab_mask", mask, persistent=False)  # (S, V)
        self.register_buffer("stream_offset", torch.arange(S) * V, persistent=False)  # (S,)
        self.register_buffer("slopes", alibi_slopes(cfg.n_head), persistent=False)  # (H,)
        self.apply(self._init)
        if cfg.pitch_classes:
            nn.init.zeros_(self.pc_emb.weight)  # starts as a no-op (also when added to a trained model)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed(self, tokens: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        """tokens (..., S) int64, meta (..., 2) int64 -> (..., d)."""
        flat = tokens + self.stream_offset
        x = self.tok_emb(flat).sum(-2)
        if self.cfg.pitch_classes:
            x = x + self.pc_emb(self.pc_index[flat]).sum(-2)
        out: torch.Tensor = x + self.style_emb(meta[..., 0]) + self.metric_emb(meta[..., 1])
        return out

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., d) -> (..., S, V) with -inf outside each stream's target vocabulary."""
        out: torch.Tensor = self.head(self.ln_f(h))
        return out.view(*h.shape[:-1], self.cfg.num_streams, self.cfg.max_vocab) + self.vocab_mask

    def window_bias(self, nb: int, device: torch.device) -> torch.Tensor:
        """(H, nb, W, N + 2W): 0 on the N sinks, then the ALiBi bias of query i (block row)
        on key j (previous + current block), -inf outside 0 <= dist < W and on the keys
        before the sequence start."""
        W = self.cfg.window
        i = torch.arange(W, device=device)[:, None] + W
        j = torch.arange(2 * W, device=device)[None, :]
        dist = (i - j).float()  # (W, 2W)
        ok = (dist >= 0) & (dist < W)
        bias = -self.slopes.to(device)[:, None, None] * dist  # (H, W, 2W)
        bias = bias.masked_fill(~ok, float("-inf"))[:, None].repeat(1, nb, 1, 1)
        bias[:, 0, :, :W] = float("-inf")  # nothing before row 0
        return F.pad(bias, (self.cfg.n_sink, 0), value=0.0)

    def forward(self, tokens: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, S), meta (B, T, 2) -> logits (B, T, S, V); row i sees rows i-W+1..i."""
        B, T, _ = tokens.shape
        W = self.cfg.window
        Tp = -(-T // W) * W
        if Tp != T:  # pad to whole blocks; padded rows come after every real row, so are never seen
            tokens = F.pad(tokens, (0, 0, 0, Tp - T), value=PAD)
            meta = F.pad(meta, (0, 0, 0, Tp - T), value=0)
        x = self.drop(self.embed(tokens, meta))
        bias = self.window_bias(Tp // W, tokens.device)
        for blk in self.blocks:
            x = blk(x, bias)
        return self.logits(x[:, :T])

    def step(
        self,
        tokens: torch.Tensor,
        meta: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        pos: torch.Tensor,
        n: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Streaming step at absolute position n (0-dim int64).

        tokens (S,), meta (2,), k/v (L, H, W, Dh), pos (W,) int64 absolute position held by
        each cache slot (-1 = empty) -> logits (S, V), new k, new v, new pos.
        Pure function of its inputs (no state) so it exports to ONNX as is.
        """
        W = self.cfg.window
        write = torch.arange(W, device=pos.device) == torch.remainder(n, W)  # (W,)
        pos = torch.where(write, n, pos)
        dist = (n - pos).to(k.dtype)  # (W,)
        bias = -self.slopes.to(k.dtype)[:, None] * dist[None, :]  # (H, W)
        bias = bias.masked_fill((pos < 0)[None, :], float("-inf"))  # (H, W)
        bias = F.pad(bias, (self.cfg.n_sink, 0), value=0.0)[:, None, :]  # (H, 1, N + W)
        x = self.embed(tokens[None], meta[None])  # (1, d)
        ks, vs = [], []
        w3 = write[None, :, None]  # (1, W, 1)
        for layer, blk in enumerate(self.blocks):
            x, kl, vl = blk.step(x, k[layer], v[layer], w3, bias)  # type: ignore[operator]  # a Block
            ks.append(kl)
            vs.append(vl)
        return self.logits(x)[0], torch.stack(ks), torch.stack(vs), pos


class KVCache:
    """Preallocated streaming state for ``Transformer.step``: written in place, never
    re-bound (so CUDA graphs / static shapes stay possible).

    Thread: owned by one worker thread.
    """

    def __init__(self, cfg: ModelConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        shape = (cfg.n_layer, cfg.n_head, cfg.window, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = torch.full((cfg.window,), -1, dtype=torch.long, device=device)
        self.n = torch.zeros((), dtype=torch.long, device=device)

    def reset(self) -> None:
        self.k.zero_()
        self.v.zero_()
        self.pos.fill_(-1)
        self.n.zero_()

    @torch.no_grad()
    def step(self, model: Transformer, tokens: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        """tokens (S,), meta (2,) -> logits (S, V) for the next position."""
        logits, k, v, pos = model.step(tokens, meta, self.k, self.v, self.pos, self.n)
        self.k.copy_(k)
        self.v.copy_(v)
        self.pos.copy_(pos)
        self.n.add_(1)
        return logits


class StepGraph(nn.Module):
    """``Transformer.step`` as a module's forward, for tracing and ONNX export."""

    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        tokens: torch.Tensor,
        meta: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        pos: torch.Tensor,
        n: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        return self.model.step(tokens, meta, k, v, pos, n)
