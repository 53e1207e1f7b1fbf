// This file is the second half of the reference layer (see ref_ops.go):
// the whole ViT, forward and backward, composed from the Ref ops in the
// order of timm's VisionTransformer, with the LOOPE module (convs,
// BatchNorm in training mode, the N×N Linear, the squash), the additive
// PE tables (learnable and every fixed sinusoid) and RoPE with fixed
// angles (rope-axial, rope-1d). It reads the weights of a ViT[float64] and
// returns gradients by checkpoint name, the names of the fixtures.
//
//	img (B, C, H, W) → patch conv (B, D, G, G) → tokens (B, N−1, D)
//	→ [CLS; tokens] (B, N, D) → + PE → blocks → norm(x[:, 0]) → head (B, K)
//	block: x += proj(attention(qkv(norm1(x))));  x += fc2(GELU(fc1(norm2(x))))

package loope

import (
	"fmt"
	"math"
)

// RefBlockActs are one block's activations, kept for RefViTBackward.
type RefBlockActs struct {
	X                   []float64 // (B, N, D) block input
	LN1, LN1Mean, LN1Rs []float64 // (B, N, D) norm1(X); row mean and rstd (B·N)
	QKV                 []float64 // (B, N, 3D) qkv(LN1)
	QKVRot              []float64 // (B, N, 3D) QKV with q, k rotated by RoPE; QKV itself otherwise
	Att                 []float64 // (B, H, N, N) softmax probabilities
	AttOut              []float64 // (B, N, D) attention output, heads merged
	Res                 []float64 // (B, N, D) X + proj(AttOut)
	LN2, LN2Mean, LN2Rs []float64 // (B, N, D) norm2(Res); row mean and rstd (B·N)
	FC1                 []float64 // (B, N, MLP) fc1(LN2)
	Act                 []float64 // (B, N, MLP) GELU(FC1); the block output is Res + fc2(Act)
}

// RefLoopeActs are the LOOPE module's activations (loope.go has the math).
type RefLoopeActs struct {
	In             []float64    // (B, C+2, H, W) the image with its row and column maps
	Pre, Act       [5][]float64 // conv i output before and after GELU: (B, 32, G, G) … (B, 1, G, G)
	BN, Mean, Rstd []float64    // (B, N) BatchNorm output; batch mean and rstd (1)
	Lin            []float64    // (B, N) BN·Wᵀ (+ bias)
	X              []float64    // (B, N) X = X_G + X_C with X_C = 2σ(Lin) − 1
	PE             []float64    // (B, N, D) [cls_token; sin/cos(X·ω) interleaved]
}

// RefActs are the activations of one RefViTForward.
type RefActs struct {
	B              int
	Img            []float64 // (B, C, H, W)
	Tokens         []float64 // (B, N, D) [CLS; patch tokens], before the PE
	Loope          *RefLoopeActs
	Blocks         []RefBlockActs
	Out            []float64        // (B, N, D) output of the last block
	CLS            []float64        // (B, D) Out[:, 0]
	Norm           []float64        // (B, D) norm(CLS)
	NormMean       []float64        // (B) row mean
	NormRstd       []float64        // (B) row rstd
	Logits         []float64        // (B, K)
	table          []float64        // (N, D) additive PE table (learnable, fixed), or nil
	learned        *Tensor[float64] // the learnable table, which gets a gradient
	cos, sin       []float64        // (N−1, Dh/2) RoPE angle tables, or nil
	patchGeom      RefConv
	loopeGeom      [5]RefConv
	loopePE        *loopePE[float64]
	bnMom, bnEps   float64
	scale, lnEps   float64
	grid, n, d, dh int
}

// RefViTForward runs m on the images img (B, C, H, W) in training mode
// (LOOPE's BatchNorm uses batch statistics and updates its running ones in
// m) and returns every activation; the logits are RefActs.Logits (B, K).
// It covers the PEs none, learnable, every fixed sinusoid, rope-axial,
// rope-1d and the default loope (GELU, 2σ − 1); others are an error.
func RefViTForward(m *ViT[float64], img []float64, b int) (*RefActs, error) {
	cfg := m.Cfg
	g, d, n, h := cfg.Grid(), cfg.Dim, cfg.Tokens(), cfg.Heads
	if b <= 0 || len(img) != b*cfg.Channels*cfg.Image*cfg.Image {
		return nil, fmt.Errorf("loope: RefViTForward: %d image values for batch %d of (%d, %d, %d)", len(img), b, cfg.Channels, cfg.Image, cfg.Image)
	}
	a := &RefActs{B: b, Img: img, grid: g, n: n, d: d, dh: d / h, lnEps: cfg.Eps, scale: 1 / math.Sqrt(float64(d/h)),
		patchGeom: RefConv{B: b, C: cfg.Channels, H: cfg.Image, W: cfg.Image, O: d, KH: cfg.Patch, KW: cfg.Patch, Stride: cfg.Patch, Groups: 1}}
	switch pe := m.PE.(type) {
	case noPE[float64]:
	case *learnablePE[float64]:
		a.table, a.learned = pe.E.Data, pe.E
	case *fixedPE[float64]:
		a.table = pe.E.Data
	case *ropePE[float64]:
		if pe.Freqs != nil {
			return nil, fmt.Errorf("loope: RefViTForward: %s has learned angles; the reference covers fixed RoPE only", pe.name)
		}
		a.cos, a.sin = pe.cos.Data, pe.sin.Data
	case *loopePE[float64]:
		if pe.relu || pe.tanh {
			return nil, fmt.Errorf("loope: RefViTForward: the reference covers LOOPE with GELU and 2σ − 1 only")
		}
		a.loopePE, a.bnMom, a.bnEps = pe, loopeBNMomentum, loopeBNEps
	default:
		return nil, fmt.Errorf("loope: RefViTForward: PE %q is not in the reference layer", m.PE.Name())
	}

	// Patch embedding: conv k = s = P, then (B, D, G·G) → (B, G·G, D) after the CLS row.
	patch := make([]float64, b*d*g*g)
	RefConv2dForward(patch, img, m.PatchW.Data, m.PatchB.Data, a.patchGeom)
	a.Tokens = make([]float64, b*n*d)
	for bi := range b {
		copy(a.Tokens[bi*n*d:], m.CLS.Data)
		for t := range g * g {
			for c := range d {
				a.Tokens[(bi*n+1+t)*d+c] = patch[(bi*d+c)*g*g+t]
			}
		}
	}
	// Additive PE.
	x := append([]float64(nil), a.Tokens...)
	if a.loopePE != nil {
		a.Loope = refLoopeForward(a, img)
	}
	for bi := range b {
		for i := range n * d {
			switch {
			case a.table != nil:
				x[bi*n*d+i] += a.table[i]
			case a.Loope != nil:
				x[bi*n*d+i] += a.Loope.PE[bi*n*d+i]
			}
		}
	}
	// Blocks.
	a.Blocks = make([]RefBlockActs, len(m.Blocks))
	for i := range m.Blocks {
		x = refBlockForward(a, &m.Blocks[i], &a.Blocks[i], x)
	}
	a.Out = x
	// Final norm on the CLS token, then the head.
	a.CLS = make([]float64, b*d)
	for bi := range b {
		copy(a.CLS[bi*d:(bi+1)*d], x[bi*n*d:])
	}
	a.Norm, a.NormMean, a.NormRstd = make([]float64, b*d), make([]float64, b), make([]float64, b)
	RefLayerNormForward(a.Norm, a.NormMean, a.NormRstd, a.CLS, m.NormW.Data, m.NormB.Data, b, d, cfg.Eps)
	a.Logits = make([]float64, b*cfg.Classes)
	RefLinearForward(a.Logits, a.Norm, m.HeadW.Data, m.HeadB.Data, b, d, cfg.Classes)
	return a, nil
}

// refBlockForward runs one pre-norm block on x (B, N, D), recording its
// activations in ba, and returns the block output (B, N, D).
func refBlockForward(a *RefActs, blk *Block[float64], ba *RefBlockActs, x []float64) []float64 {
	b, n, d, rows := a.B, a.n, a.d, a.B*a.n
	h, mlp := d/a.dh, len(blk.FC1B.Data)
	ba.X = x
	ba.LN1, ba.LN1Mean, ba.LN1Rs = make([]float64, rows*d), make([]float64, rows), make([]float64, rows)
	RefLayerNormForward(ba.LN1, ba.LN1Mean, ba.LN1Rs, x, blk.Norm1W.Data, blk.Norm1B.Data, rows, d, a.lnEps)
	ba.QKV = make([]float64, rows*3*d)
	RefLinearForward(ba.QKV, ba.LN1, blk.QKVW.Data, blk.QKVB.Data, rows, d, 3*d)
	ba.QKVRot = ba.QKV
	if a.cos != nil {
		ba.QKVRot = make([]float64, rows*3*d)
		RefRopeForward(ba.QKVRot, ba.QKV, a.cos, a.sin, b, n, d, h, 1)
	}
	ba.Att, ba.AttOut = make([]float64, b*h*n*n), make([]float64, rows*d)
	RefAttentionForward(ba.AttOut, ba.Att, ba.QKVRot, nil, b, n, d, h, a.scale)
	ba.Res = make([]float64, rows*d)
	RefLinearForward(ba.Res, ba.AttOut, blk.ProjW.Data, blk.ProjB.Data, rows, d, d)
	for i := range ba.Res {
		ba.Res[i] += x[i] // residual
	}
	ba.LN2, ba.LN2Mean, ba.LN2Rs = make([]float64, rows*d), make([]float64, rows), make([]float64, rows)
	RefLayerNormForward(ba.LN2, ba.LN2Mean, ba.LN2Rs, ba.Res, blk.Norm2W.Data, blk.Norm2B.Data, rows, d, a.lnEps)
	ba.FC1, ba.Act = make([]float64, rows*mlp), make([]float64, rows*mlp)
	RefLinearForward(ba.FC1, ba.LN2, blk.FC1W.Data, blk.FC1B.Data, rows, d, mlp)
	RefGELUForward(ba.Act, ba.FC1)
	out := make([]float64, rows*d)
	RefLinearForward(out, ba.Act, blk.FC2W.Data, blk.FC2B.Data, rows, mlp, d)
	for i := range out {
		out[i] += ba.Res[i] // residual
	}
	return out
}

// refLoopeForward runs the LOOPE module on img (B, C, H, W):
// [img, rowmap, colmap] → 5 × (conv → GELU) → BatchNorm → Linear(N, N) →
// X_C = 2σ − 1 → X = X_G + X_C → PE = [cls_token; sin/cos(X·ω)] (B, N, D).
func refLoopeForward(a *RefActs, img []float64) *RefLoopeActs {
	p, b, g, d := a.loopePE, a.B, a.grid, a.d
	hw, np := p.image*p.image, g*g // pixels, patches
	la := &RefLoopeActs{In: make([]float64, b*(p.channels+2)*hw)}
	for bi := range b {
		copy(la.In[bi*(p.channels+2)*hw:], img[bi*p.channels*hw:(bi+1)*p.channels*hw])
		copy(la.In[(bi*(p.channels+2)+p.channels)*hw:], p.coords)
	}
	in, c := la.In, p.channels+2
	for i := range p.ConvW {
		geom := RefConv{B: b, C: c, H: g, W: g, O: loopeWidths[i], KH: loopeKernel, KW: loopeKernel, Stride: 1, Pad: loopeKernel / 2, Groups: 1}
		if i == 0 {
			geom = RefConv{B: b, C: c, H: p.image, W: p.image, O: loopeWidths[0], KH: p.patch, KW: p.patch, Stride: p.patch, Groups: 1}
		}
		a.loopeGeom[i] = geom
		la.Pre[i], la.Act[i] = make([]float64, b*geom.O*np), make([]float64, b*geom.O*np)
		RefConv2dForward(la.Pre[i], in, p.ConvW[i].Data, p.ConvB[i].Data, geom)
		RefGELUForward(la.Act[i], la.Pre[i])
		in, c = la.Act[i], geom.O
	}
	la.BN, la.Mean, la.Rstd = make([]float64, b*np), make([]float64, 1), make([]float64, 1)
	RefBatchNormForward(la.BN, la.Mean, la.Rstd, in, p.BNW.Data, p.BNB.Data, p.BNMean.Data, p.BNVar.Data, b, 1, np, a.bnMom, a.bnEps)
	la.Lin = make([]float64, b*np)
	var linB []float64
	if p.LinB != nil {
		linB = p.LinB.Data
	}
	RefLinearForward(la.Lin, la.BN, p.LinW.Data, linB, b, np, np)
	la.X, la.PE = make([]float64, b*np), make([]float64, b*a.n*d)
	for bi := range b {
		copy(la.PE[bi*a.n*d:], p.CLS.Data)
		for t := range np {
			x := 2/(1+math.Exp(-la.Lin[bi*np+t])) - 1 + p.xg.Data[t] // X_C + X_G
			la.X[bi*np+t] = x
			e := la.PE[(bi*a.n+1+t)*d:]
			for i, w := range p.freqs.Data {
				e[2*i], e[2*i+1] = math.Sin(x*w), math.Cos(x*w)
			}
		}
	}
	return la
}

// RefViTBackward returns the gradients of Σ logits⊙dlogits (dlogits (B, K),
// e.g. from RefBCEWithLogits) with respect to every trainable tensor of m,
// keyed by its checkpoint name (ViT.Params), for the activations a of
// RefViTForward. Layers run in the reverse order of the forward.
func RefViTBackward(m *ViT[float64], a *RefActs, dlogits []float64) map[string][]float64 {
	grads, of := refGradBuffers(m)
	b, n, d, cfg := a.B, a.n, a.d, m.Cfg
	dnorm, dcls := make([]float64, b*d), make([]float64, b*d)
	RefLinearBackward(dnorm, of(m.HeadW), of(m.HeadB), dlogits, a.Norm, m.HeadW.Data, b, d, cfg.Classes)
	RefLayerNormBackward(dcls, of(m.NormW), of(m.NormB), dnorm, a.CLS, m.NormW.Data, a.NormMean, a.NormRstd, b, d)
	dx := make([]float64, b*n*d) // gradient of the tokens between blocks
	for bi := range b {
		copy(dx[bi*n*d:], dcls[bi*d:(bi+1)*d])
	}
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		dx = refBlockBackward(a, &m.Blocks[i], &a.Blocks[i], dx, of)
	}
	// Additive PE, then CLS and the patch conv.
	switch {
	case a.learned != nil:
		dt := of(a.learned)
		for i := range dx {
			dt[i%(n*d)] += dx[i]
		}
	case a.Loope != nil:
		refLoopeBackward(a, dx, of)
	}
	dpatch, g := make([]float64, b*d*(n-1)), a.grid
	for bi := range b {
		for c := range d {
			of(m.CLS)[c] += dx[bi*n*d+c]
			for t := range g * g {
				dpatch[(bi*d+c)*g*g+t] = dx[(bi*n+1+t)*d+c]
			}
		}
	}
	RefConv2dBackward(nil, of(m.PatchW), of(m.PatchB), dpatch, a.Img, m.PatchW.Data, a.patchGeom)
	return grads
}

// refBlockBackward takes the gradient dout (B, N, D) of one block's output
// and returns that of its input, adding the parameter gradients.
func refBlockBackward(a *RefActs, blk *Block[float64], ba *RefBlockActs, dout []float64, of func(*Tensor[float64]) []float64) []float64 {
	b, n, d, rows := a.B, a.n, a.d, a.B*a.n
	h, mlp := d/a.dh, len(blk.FC1B.Data)
	// MLP: out = Res + fc2(GELU(fc1(norm2(Res)))).
	dres := append([]float64(nil), dout...) // residual path
	dact, dfc1, dln2 := make([]float64, rows*mlp), make([]float64, rows*mlp), make([]float64, rows*d)
	RefLinearBackward(dact, of(blk.FC2W), of(blk.FC2B), dout, ba.Act, blk.FC2W.Data, rows, mlp, d)
	RefGELUBackward(dfc1, dact, ba.FC1)
	RefLinearBackward(dln2, of(blk.FC1W), of(blk.FC1B), dfc1, ba.LN2, blk.FC1W.Data, rows, d, mlp)
	RefLayerNormBackward(dres, of(blk.Norm2W), of(blk.Norm2B), dln2, ba.Res, blk.Norm2W.Data, ba.LN2Mean, ba.LN2Rs, rows, d)
	// Attention: Res = X + proj(attention(qkv(norm1(X)))).
	dx := append([]float64(nil), dres...) // residual path
	datt, dqkvRot, dln1 := make([]float64, rows*d), make([]float64, rows*3*d), make([]float64, rows*d)
	RefLinearBackward(datt, of(blk.ProjW), of(blk.ProjB), dres, ba.AttOut, blk.ProjW.Data, rows, d, d)
	RefAttentionBackward(dqkvRot, nil, datt, ba.Att, ba.QKVRot, b, n, d, h, a.scale)
	dqkv := dqkvRot
	if a.cos != nil {
		dqkv = make([]float64, rows*3*d)
		RefRopeBackward(dqkv, dqkvRot, a.cos, a.sin, b, n, d, h, 1)
	}
	RefLinearBackward(dln1, of(blk.QKVW), of(blk.QKVB), dqkv, ba.LN1, blk.QKVW.Data, rows, d, 3*d)
	RefLayerNormBackward(dx, of(blk.Norm1W), of(blk.Norm1B), dln1, ba.X, blk.Norm1W.Data, ba.LN1Mean, ba.LN1Rs, rows, d)
	return dx
}

// refLoopeBackward adds the LOOPE module's parameter gradients for the
// gradient dpe (B, N, D) of its PE rows.
func refLoopeBackward(a *RefActs, dpe []float64, of func(*Tensor[float64]) []float64) {
	p, la, b, np, d := a.loopePE, a.Loope, a.B, a.grid*a.grid, a.d
	dlin := make([]float64, b*np)
	for bi := range b {
		for c := range d {
			of(p.CLS)[c] += dpe[bi*a.n*d+c]
		}
		for t := range np {
			e, de := la.PE[(bi*a.n+1+t)*d:], dpe[(bi*a.n+1+t)*d:]
			dX := 0.0 // d/dX of sin(X·ω_i), cos(X·ω_i) = ω_i·cos, −ω_i·sin
			for i, w := range p.freqs.Data {
				dX += w * (e[2*i+1]*de[2*i] - e[2*i]*de[2*i+1])
			}
			s := 1 / (1 + math.Exp(-la.Lin[bi*np+t]))
			dlin[bi*np+t] = dX * 2 * s * (1 - s) // X_C = 2σ − 1
		}
	}
	var dLinB []float64
	if p.LinB != nil {
		dLinB = of(p.LinB)
	}
	dbn, dact := make([]float64, b*np), make([]float64, b*np)
	RefLinearBackward(dbn, of(p.LinW), dLinB, dlin, la.BN, p.LinW.Data, b, np, np)
	RefBatchNormBackward(dact, of(p.BNW), of(p.BNB), dbn, la.Act[4], p.BNW.Data, la.Mean, la.Rstd, b, 1, np)
	for i := 4; i >= 0; i-- {
		dpre := make([]float64, len(la.Pre[i]))
		RefGELUBackward(dpre, dact, la.Pre[i])
		in := la.In
		dact = nil // the image gets no gradient
		if i > 0 {
			in, dact = la.Act[i-1], make([]float64, len(la.Act[i-1]))
		}
		RefConv2dBackward(dact, of(p.ConvW[i]), of(p.ConvB[i]), dpre, in, p.ConvW[i].Data, a.loopeGeom[i])
	}
}

// refGradBuffers returns a zeroed gradient slice per trainable tensor of
// m, by checkpoint name, and the function that finds a tensor's slice (nil
// for a tensor without one).
func refGradBuffers(m *ViT[float64]) (map[string][]float64, func(*Tensor[float64]) []float64) {
	grads, byT := map[string][]float64{}, map[*Tensor[float64]][]float64{}
	for _, p := range m.Params() {
		if !p.Buffer {
			grads[p.Name] = make([]float64, p.T.Size())
			byT[p.T] = grads[p.Name]
		}
	}
	return grads, func(t *Tensor[float64]) []float64 { return byT[t] }
}
