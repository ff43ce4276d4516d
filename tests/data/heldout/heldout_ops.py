"""Custom ops for tests/test_heldout_verdicts.py: each right op beside the same op with one planted fault."""
import numpy as np

# ------------------------------------------------------------------ forgotten gradients (several conventions)

class Bilinear:                      # x * w**2
    def forward(self, x, w): return x * w ** 2
    def vjp(self, g, out, x, w): return g * w ** 2, 2 * g * x * w


class BilinearForgetsW(Bilinear):
    def vjp(self, g, out, x, w): return g * w ** 2, None


class UsesOnlyX:                     # w is an argument the output does not depend on: None is right
    def forward(self, x, w): return 3 * x
    def vjp(self, g, out, x, w): return 3 * g, None


class CubeReturnsNothing:
    def forward(self, x): return x ** 3
    def vjp(self, g, out, x): return None


class Cube:
    def forward(self, x): return x ** 3
    def vjp(self, g, out, x): return 3 * g * x ** 2


class Gather:                        # rows of a table by integer ids: ids are data
    def forward(self, table, ids): return table[ids]
    def vjp(self, g, out, table, ids):
        grad = np.zeros_like(table)
        np.add.at(grad, ids, g)
        return grad, None


def scale_forward(x, w, b):
    out = x * w + b
    return out, (x, w)


def scale_backward(dout, cache):
    x, w = cache
    return dout * w, np.sum(dout * x, axis=0), np.sum(dout, axis=0)


def scale_backward_no_bias(dout, cache):
    x, w = cache
    return dout * w, np.sum(dout * x, axis=0), None


def scale_backward_mutates_cache(dout, cache):
    x, w = cache
    x *= 2                           # in place on the array forward cached (the op's own input)
    return dout * w, np.sum(dout * x / 2, axis=0), np.sum(dout, axis=0)


def scale_backward_mutates_dout(dout, cache):
    x, w = cache
    dout *= 2
    return dout * w / 2, np.sum(dout * x, axis=0) / 2, np.sum(dout, axis=0) / 2


class Affine:                        # a stateful layer: X @ W + b, gradients into self.gradients
    def __init__(self):
        self.parameters, self.gradients = {}, {}

    def forward(self, X):
        self.X = X
        return X @ self.parameters["W"] + self.parameters["b"]

    def backward(self, dY):
        self.gradients["W"] = self.X.T @ dY
        self.gradients["b"] = dY.sum(axis=0)
        return dY @ self.parameters["W"].T


class AffineForgetsX(Affine):
    def backward(self, dY):
        super().backward(dY)
        return None


class AffineScalesCachedX(Affine):   # in place on the array cached by forward
    def backward(self, dY):
        self.X *= 1.0
        self.X += 0.5
        self.gradients["W"] = (self.X - 0.5).T @ dY
        self.gradients["b"] = dY.sum(axis=0)
        return dY @ self.parameters["W"].T


class SquaredError:                  # loss with a fused gradient with respect to pred only
    def loss(self, pred, target): return float(np.sum((pred - target) ** 2) / 2)
    def grad(self, pred, target): return pred - target


# ------------------------------------------------------------------ bugs the graph's own cotangent cannot see

class Centre:                        # x - mean(x) over the last axis
    def forward(self, x): return x - x.mean(-1, keepdims=True)
    def vjp(self, g, out, x): return (g - g.mean(-1, keepdims=True),)
    def jvp(self, t, out, x): return t[0] - t[0].mean(-1, keepdims=True)


class CentreDropsMean(Centre):       # vjp returns g: right only for a cotangent with zero row mean
    def vjp(self, g, out, x): return (g,)


class CentreDropsMeanNoJvp:
    def forward(self, x): return x - x.mean(-1, keepdims=True)
    def vjp(self, g, out, x): return (g,)


class Normalise:                     # x / |x| over the last axis
    def forward(self, x): return x / np.linalg.norm(x, axis=-1, keepdims=True)
    def vjp(self, g, out, x):
        r = np.linalg.norm(x, axis=-1, keepdims=True)
        n = x / r
        return ((g - n * np.sum(n * g, axis=-1, keepdims=True)) / r,)


class NormaliseDropsProjection(Normalise):   # right only for a cotangent orthogonal to the output
    def vjp(self, g, out, x): return (g / np.linalg.norm(x, axis=-1, keepdims=True),)


# ------------------------------------------------------------------ in place

class SinScalesInput:                # forward halves its input in place
    def forward(self, x):
        x *= 0.5
        return np.sin(x)
    def vjp(self, g, out, x): return (0.5 * g * np.cos(x),)


class Sin:
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x): return (g * np.cos(x),)


class ReluInPlace:                   # the classic: np.maximum(x, 0, out=x)
    def forward(self, x):
        np.maximum(x, 0, out=x)
        return x
    def vjp(self, g, out, x): return (g * (x > 0),)


class CubeDoublesG(Cube):
    def vjp(self, g, out, x):
        g *= 2
        return (1.5 * g * x ** 2,)


class CubeSquaresInput(Cube):
    def vjp(self, g, out, x):
        x **= 2
        return (3 * g * x,)


class TanhCachesOut:                 # forward keeps its result; vjp reuses it in place
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out
    def vjp(self, g, out, x):
        y = np.tanh(x)
        return (g * (1 - y * y),)


class TanhSquaresCachedOut(TanhCachesOut):
    def vjp(self, g, out, x):
        self.out **= 2
        return (g * (1 - self.out),)


# ------------------------------------------------------------------ plain elementwise rules, right and wrong

class Tanh:
    complex_safe = True
    def forward(self, x): return np.tanh(x)
    def vjp(self, g, out, x): return (g * (1 - np.tanh(x) ** 2),)


class Tanh13(Tanh):
    def vjp(self, g, out, x): return (1.3 * g * (1 - np.tanh(x) ** 2),)


class RealTanh:                      # not declared complex-safe: complex-step cannot pass through it
    def forward(self, x): return np.tanh(x)
    def vjp(self, g, out, x): return (g * (1 - np.tanh(x) ** 2),)


class Exp:
    def forward(self, x): return np.exp(x)
    def vjp(self, g, out, x): return (g * np.exp(x),)


class ExpThreeTenthsPercent(Exp):
    def vjp(self, g, out, x): return (1.003 * g * np.exp(x),)


class MatMul:
    def forward(self, a, b): return a @ b
    def vjp(self, g, out, a, b): return g @ b.T, a.T @ g


class MatMulOnePercentB(MatMul):
    def vjp(self, g, out, a, b): return g @ b.T, 1.01 * (a.T @ g)


class TanhOneElement(Tanh):          # 0.1 % off at flat index 1742 only
    def vjp(self, g, out, x):
        d = np.array(g * (1 - np.tanh(x) ** 2))
        d.reshape(-1)[1742] *= 1.001
        return (d,)


class Cos:
    def forward(self, x): return np.cos(x)
    def vjp(self, g, out, x): return (-g * np.sin(x),)


class CosOnePercent(Cos):
    def vjp(self, g, out, x): return (-1.01 * g * np.sin(x),)


class Log1p:
    def forward(self, x): return np.log1p(x)
    def vjp(self, g, out, x): return (g / (1 + x),)


class Log1pOnePercent(Log1p):
    def vjp(self, g, out, x): return (1.01 * g / (1 + x),)


class Sinh:                          # at 17 the gradient is about 1.2e7
    def forward(self, x): return np.sinh(x)
    def vjp(self, g, out, x): return (g * np.cosh(x),)


class SinhOnePercent(Sinh):
    def vjp(self, g, out, x): return (1.01 * g * np.cosh(x),)


class Recip:                         # 1/x: gradients from 1e6 to 1e-12 in one node
    def forward(self, x): return 1 / x
    def vjp(self, g, out, x): return (-g / x ** 2,)


class RecipOnePercent(Recip):
    def vjp(self, g, out, x): return (-1.01 * g / x ** 2,)


# ------------------------------------------------------------------ kinks of custom ops

class Relu6:                         # declares its branch decisions
    def forward(self, x): return np.clip(x, 0, 6)
    def vjp(self, g, out, x): return (g * ((x > 0) & (x < 6)),)
    def branches(self, x): return np.sign(x) + np.sign(x - 6)


class Relu6WrongAtZero(Relu6):       # 2 at x = 0: outside the one-sided slopes 0 and 1
    def vjp(self, g, out, x): return (g * np.where(x == 0, 2.0, (x > 0) & (x < 6)),)


class StepRelu:                      # no branches declared: gradient 1 at 0 (the right-hand slope)
    def forward(self, x): return np.maximum(x, 0)
    def vjp(self, g, out, x): return (g * (x >= 0),)


class StepReluWrongAtZero(StepRelu):  # 1.5 at 0: outside the one-sided slopes 0 and 1
    def vjp(self, g, out, x): return (g * np.where(x == 0, 1.5, x > 0),)


class Leaky:                         # no branches declared: 0.1 x below 0; 0.7 (between 0.1 and 1) at 0
    def forward(self, x): return np.where(x > 0, x, 0.1 * x)
    def vjp(self, g, out, x): return (g * np.where(x > 0, 1.0, np.where(x == 0, 0.7, 0.1)),)


class LeakyWrongAtZero(Leaky):
    def vjp(self, g, out, x): return (g * np.where(x > 0, 1.0, np.where(x == 0, -0.5, 0.1)),)


class RealTanh13(RealTanh):
    def vjp(self, g, out, x): return (1.3 * g * (1 - np.tanh(x) ** 2),)


class TanhFirstElement(Tanh):        # complex-safe; 0.1 % off at element 0 only
    def vjp(self, g, out, x):
        d = np.array(g * (1 - np.tanh(x) ** 2))
        d.reshape(-1)[0] *= 1.001
        return (d,)


# ------------------------------------------------------------------ misbehaving rules

class SignIntegerGrad:               # |x| * 2 whose vjp returns integers
    def forward(self, x): return 2 * np.abs(x)
    def vjp(self, g, out, x): return ((2 * np.sign(x)).astype(np.int64),)


class SignGrad:
    def forward(self, x): return 2 * np.abs(x)
    def vjp(self, g, out, x): return (2 * g * np.sign(x),)


class SignBoolGrad(SignGrad):
    def vjp(self, g, out, x): return (x > 0,)


class SignObjectGrad(SignGrad):
    def vjp(self, g, out, x): return (np.array([object()] * x.size).reshape(x.shape),)


def scale_backward_noisy(dout, cache):
    x, w = cache
    noise = 1 + 1e-6 * np.random.rand()
    return dout * w * noise, np.sum(dout * x, axis=0), np.sum(dout, axis=0)


def scale_forward_centres_x(x, w, b):
    x -= x.mean()                    # in place on its input
    return x * w + b, (x, w)


class AffineForwardScalesX(Affine):
    def forward(self, X):
        X *= 2
        return super().forward(X / 2)


class BilinearScalesW(Bilinear):     # forward changes its second argument in place
    def forward(self, x, w):
        w += 0.0
        w *= -1
        return x * w ** 2


class CubeZeroesOut(Cube):           # vjp overwrites the output it is given
    def vjp(self, g, out, x):
        out[...] = 0
        return (3 * g * x ** 2,)


class StepReluTwoPercent(StepRelu):  # 2 % off wherever x > 0, right at and below 0
    def vjp(self, g, out, x): return (g * np.where(x > 0, 1.02, np.where(x == 0, 1.0, 0.0)),)


class Relu6TwoPercent(Relu6):        # declares its branches; 2 % off inside (0, 6)
    def vjp(self, g, out, x): return (1.02 * g * ((x > 0) & (x < 6)),)


class TanhRemembersX:                # the numpy-layer habit: forward keeps x, vjp reads it back
    def forward(self, x):
        self.x = x
        return np.tanh(x)
    def vjp(self, g, out, x): return (g * (1 - np.tanh(self.x) ** 2),)


class AbsNoBranches:                 # no branches declared; sign(0) = 0, which the central difference matches
    def forward(self, x): return np.abs(x)
    def vjp(self, g, out, x): return (g * np.sign(x),)
