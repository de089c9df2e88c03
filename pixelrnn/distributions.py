"""Per-value output distributions: Bernoulli for binary pixels, a discretized logistic mixture for 8-bit.

Each value gets `params_per_value` numbers from the model. Two views of the same distribution:
`log_prob` scores given values (training, NLL), `level_log_probs` lists all levels (sampling, greedy).
"""
import math

import torch
import torch.nn.functional as F

LEVELS = {"binary": 2, "8bit": 256}


def params_per_value(values: str, mixtures: int) -> int:
    return 1 if values == "binary" else 3 * mixtures


def normalize(x: torch.Tensor, values: str) -> torch.Tensor:
    """Value space (0/1 or 0..255) -> [-1, 1], the network's input scale."""
    levels = 2 if values == "binary" else 256  # LEVELS, spelled out for TorchScript (see model._sample_values)
    return x * (2.0 / (levels - 1)) - 1.0


def log_prob(params: torch.Tensor, x: torch.Tensor, values: str) -> torch.Tensor:
    """params (..., K), x (...) in value space -> log-likelihood (...) in nats."""
    if values == "binary":
        return -F.binary_cross_entropy_with_logits(params[..., 0], x, reduction="none")
    return _logistic_mixture_log_prob(params, x.unsqueeze(-1)).squeeze(-1)


def level_log_probs(params: torch.Tensor, values: str) -> torch.Tensor:
    """params (..., K) -> normalized log-probabilities of every level (..., L)."""
    if values == "binary":
        logit = params[..., :1]
        return torch.cat([F.logsigmoid(-logit), F.logsigmoid(logit)], dim=-1)
    levels = torch.arange(256, device=params.device, dtype=params.dtype)
    table = _logistic_mixture_log_prob(params, levels)
    # The mixture is normalized up to a tiny interior approximation; renormalize so sampling is exact.
    return torch.log_softmax(table, dim=-1)


def _logistic_mixture_log_prob(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Discretized logistic mixture (Salimans et al. 2017, PixelCNN++), one value at a time.

    params (..., 3M): mixture logits, means, log-scales; x (..., L) levels in 0..255 -> (..., L).
    """
    logits, means, log_scales = params.unsqueeze(-2).chunk(3, dim=-1)  # (..., 1, M) each
    log_scales = _clamp_log_scale(log_scales)
    centered = normalize(x, "8bit").unsqueeze(-1) - means  # (..., L, M)
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centered + 1.0 / 255)
    min_in = inv_scale * (centered - 1.0 / 255)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # level 0: all mass below its upper edge
    log_one_minus_cdf_min = -F.softplus(min_in)  # level 255: all mass above its lower edge
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in) - math.log(127.5)
    log_mid = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
    x = x.unsqueeze(-1).expand_as(centered)
    log_probs = torch.where(x < 0.5, log_cdf_plus, torch.where(x > 254.5, log_one_minus_cdf_min, log_mid))
    return torch.logsumexp(log_probs + torch.log_softmax(logits, dim=-1), dim=-1)


def _clamp_log_scale(log_scales: torch.Tensor) -> torch.Tensor:
    """Log-scales below -7 (far narrower than a level) count as -7: a literal, so TorchScript can compile it."""
    return log_scales.clamp(min=-7.0)


def noise_size(values: str, mixtures: int) -> int:
    """Uniform numbers one draw of one value needs: a threshold, or a component choice plus a logistic."""
    return 1 if values == "binary" else mixtures + 1


def prepare_noise(uniform: torch.Tensor, values: str) -> torch.Tensor:
    """Uniform noise (..., noise_size) -> the logistic (and Gumbel) noise `sample` consumes; done once per token."""
    uniform = uniform.clamp(1e-6, 1 - 1e-6)
    if values == "binary":
        return torch.log(uniform) - torch.log1p(-uniform)
    gumbel = -torch.log(-torch.log(uniform[..., :-1]))
    logistic = torch.log(uniform[..., -1:]) - torch.log1p(-uniform[..., -1:])
    return torch.cat([gumbel, logistic], dim=-1)


def sample(params: torch.Tensor, noise: torch.Tensor, values: str, temperature: float = 1.0) -> torch.Tensor:
    """Draw levels (...) from params (..., K) with prepared noise (..., noise_size), at a temperature.

    Binary: softmax over the two levels at temperature T, i.e. Bernoulli(sigmoid(logit / T)).
    8-bit: PixelCNN++'s sampler, exact at T = 1; T sharpens the mixture weights and scales the logistic.
    Called once per value while sampling, so it is written in few tensor operations (and scriptable).
    """
    if values == "binary":
        return (params[..., 0] > temperature * noise[..., 0]).to(params.dtype)
    logits, rest = params.unflatten(-1, (3, -1)).split([1, 2], dim=-2)  # (..., 1, M), (..., 2, M)
    if temperature != 1.0:
        logits = logits / temperature
    component = (logits[..., 0, :] + noise[..., :-1]).argmax(-1, keepdim=True)  # (..., 1)
    index = component.unsqueeze(-2).expand(list(rest.shape[:-1]) + [1])
    mean, log_scale = rest.gather(-1, index)[..., 0].unbind(-1)  # the chosen component's
    scale = _clamp_log_scale(log_scale).exp()
    if temperature != 1.0:
        scale = temperature * scale
    x = torch.addcmul(mean, scale, noise[..., -1])
    return x.add_(1).mul_(127.5).round_().clamp_(0, 255)


def mode(params: torch.Tensor, values: str) -> torch.Tensor:
    """The most likely level of each value: params (..., K) -> (...)."""
    if values == "binary":
        return (params[..., 0] > 0).to(params.dtype)
    return _logistic_mixture_level_probs(params).argmax(-1).to(params.dtype)


def _logistic_mixture_level_probs(params: torch.Tensor) -> torch.Tensor:
    """Probabilities of the 256 levels (..., 256) as differences of the CDF at the bin edges.

    A handful of passes over (..., 256, M) instead of the ~20 of the log-space formula: used where only the
    ranking matters (the most likely level), and exact up to float rounding.
    """
    logits, means, log_scales = params.chunk(3, dim=-1)  # (..., M)
    edges = normalize(torch.arange(255, device=params.device, dtype=params.dtype) + 0.5, "8bit")  # inner edges
    inv_scale = torch.exp(-_clamp_log_scale(log_scales))
    cdf = torch.sigmoid((edges[:, None] - means.unsqueeze(-2)) * inv_scale.unsqueeze(-2))  # (..., 255, M)
    cdf = F.pad(cdf, (0, 0, 1, 1), value=0.0)
    cdf[..., -1, :] = 1.0
    probs = cdf[..., 1:, :] - cdf[..., :-1, :]  # (..., 256, M)
    return (probs * torch.softmax(logits, dim=-1).unsqueeze(-2)).sum(-1)
