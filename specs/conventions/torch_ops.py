"""A PyTorch layer author's op: a torch.autograd.Function with a hand-written backward."""
import torch


class Swish(torch.autograd.Function):
    """Swish x·σ(βx) with its own backward."""

    @staticmethod
    def forward(ctx, x, beta=1.0):
        s = torch.sigmoid(beta * x)
        ctx.save_for_backward(x, s)
        ctx.beta = beta
        return x * s

    @staticmethod
    def backward(ctx, grad_out):
        x, s = ctx.saved_tensors
        return grad_out * (s + ctx.beta * x * s * (1 - s)), None
