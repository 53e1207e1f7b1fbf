//go:build amd64 && !noasm

// AVX2+FMA twins of the float32 kernels in fastmath.go, eight lanes at a
// time. Every constant is read from the table fmConst (argument c, in CX),
// one 32-byte row per constant; the offsets below are the fm* row indices
// of fastmath.go times 32.

#include "textflag.h"

#define LOG2E 0
#define C1 32
#define C2 64
#define LO 96
#define HI 128
#define P0 160
#define P1 192
#define P2 224
#define P3 256
#define P4 288
#define P5 320
#define ONE 352
#define HALF 384
#define ABSMASK 416
#define SIGNMASK 448
#define NISQ2 480
#define ISQ2PI 512
#define B127 544
#define NINF 576
#define ERFC0 608
#define ERFC1 640
#define ERFC2 672
#define ERFC3 704
#define ERFC4 736
#define ERFC5 768
#define ERFC6 800
#define ERFC7 832
#define ERFC8 864
#define ERFC9 896
#define MASK 928

// EXP replaces X by exp32(X) lane by lane; T1, T2, T3 are clobbered.
// Clamp to [LO, HI] keeping NaN (VMINPS/VMAXPS return their last Go
// operand's lane when either is NaN), n = round(x·log2 e), r = x − n·C1 −
// n·C2, p = poly(r)·r² + r + 1, then p·2^(n − [n>0]) doubled where n > 0.
#define EXP(X, T1, T2, T3) \
	VMOVUPS HI(CX), T1; \
	VMINPS X, T1, T1; \
	VMOVUPS LO(CX), T2; \
	VMAXPS T1, T2, T1; \
	VMULPS LOG2E(CX), T1, T2; \
	VROUNDPS $0, T2, T2; \
	VFNMADD231PS C1(CX), T2, T1; \
	VFNMADD231PS C2(CX), T2, T1; \
	VMOVUPS P0(CX), T3; \
	VFMADD213PS P1(CX), T1, T3; \
	VFMADD213PS P2(CX), T1, T3; \
	VFMADD213PS P3(CX), T1, T3; \
	VFMADD213PS P4(CX), T1, T3; \
	VFMADD213PS P5(CX), T1, T3; \
	VMULPS T1, T1, X; \
	VFMADD213PS T1, X, T3; \
	VADDPS ONE(CX), T3, T3; \
	VCVTPS2DQ T2, T2; \
	VPXOR X, X, X; \
	VPCMPGTD X, T2, X; \
	VPADDD X, T2, T2; \
	VPADDD B127(CX), T2, T2; \
	VPSLLD $23, T2, T2; \
	VMULPS T2, T3, T3; \
	VANDPS ONE(CX), X, X; \
	VFMADD231PS X, T3, T3; \
	VMOVAPS T3, X

// PHI sets Y1 = Φ(Y8) and Y9 = a² (a = |Y8|/√2) as phi32 does; Y0, Y2,
// Y3, Y4 are clobbered. t = 1/(1 + a/2), erfc(a) = t·exp(P(t) − a²),
// h = erfc(a)/2, Φ = h where x's sign bit is set, else 1 − h.
#define PHI \
	VMULPS NISQ2(CX), Y8, Y1; \
	VANDPS ABSMASK(CX), Y1, Y1; \
	VMOVUPS HALF(CX), Y2; \
	VFMADD213PS ONE(CX), Y1, Y2; \
	VMOVUPS ONE(CX), Y3; \
	VDIVPS Y2, Y3, Y2; \
	VMOVUPS ERFC9(CX), Y3; \
	VFMADD213PS ERFC8(CX), Y2, Y3; \
	VFMADD213PS ERFC7(CX), Y2, Y3; \
	VFMADD213PS ERFC6(CX), Y2, Y3; \
	VFMADD213PS ERFC5(CX), Y2, Y3; \
	VFMADD213PS ERFC4(CX), Y2, Y3; \
	VFMADD213PS ERFC3(CX), Y2, Y3; \
	VFMADD213PS ERFC2(CX), Y2, Y3; \
	VFMADD213PS ERFC1(CX), Y2, Y3; \
	VFMADD213PS ERFC0(CX), Y2, Y3; \
	VMULPS Y1, Y1, Y9; \
	VSUBPS Y9, Y3, Y0; \
	EXP(Y0, Y1, Y3, Y4); \
	VMULPS Y2, Y0, Y0; \
	VMULPS HALF(CX), Y0, Y0; \
	VMOVUPS ONE(CX), Y1; \
	VSUBPS Y0, Y1, Y1; \
	VBLENDVPS Y8, Y0, Y1, Y1

// TAILMASK splits n (BX) into n8 = n − n%8 (R8) whole blocks and rem =
// n%8 (DX), and loads Y7 with the mask of the tail: lanes [0, rem) all
// ones, the rest zero (R9, R10 clobbered).
#define TAILMASK \
	MOVQ BX, DX; \
	ANDQ $7, DX; \
	MOVQ BX, R8; \
	SUBQ DX, R8; \
	MOVQ DX, R9; \
	SHLQ $2, R9; \
	NEGQ R9; \
	LEAQ (MASK+32)(CX)(R9*1), R10; \
	VMOVUPS (R10), Y7

// SUMLANES adds Y6's eight lanes into X6's lane 0 in sumLanes' order:
// (l0+l4 + l2+l6) + (l1+l5 + l3+l7); X5 is clobbered.
#define SUMLANES \
	VEXTRACTF128 $1, Y6, X5; \
	VADDPS X5, X6, X6; \
	VPERMILPS $0x4E, X6, X5; \
	VADDPS X5, X6, X6; \
	VPERMILPS $0xB1, X6, X5; \
	VADDPS X5, X6, X6

// func softmaxRowAVX2(r *float32, n int, c *[fmRows][8]float32)
TEXT ·softmaxRowAVX2(SB), NOSPLIT, $0-24
	MOVQ r+0(FP), DI
	MOVQ n+8(FP), BX
	MOVQ c+16(FP), CX
	TAILMASK

	// Row maximum.
	VMOVUPS NINF(CX), Y4
	XORQ AX, AX
maxloop:
	CMPQ AX, R8
	JGE maxtail
	VMAXPS (DI)(AX*4), Y4, Y4
	ADDQ $8, AX
	JMP maxloop
maxtail:
	TESTQ DX, DX
	JZ maxreduce
	VMASKMOVPS (DI)(AX*4), Y7, Y5
	VMOVUPS NINF(CX), Y6
	VBLENDVPS Y7, Y5, Y6, Y5
	VMAXPS Y5, Y4, Y4
maxreduce:
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0x4E, X4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0xB1, X4, X5
	VMAXPS X5, X4, X4
	VBROADCASTSS X4, Y4

	// r = exp(r − max), summed in eight lanes.
	VXORPS Y6, Y6, Y6
	XORQ AX, AX
exploop:
	CMPQ AX, R8
	JGE exptail
	VMOVUPS (DI)(AX*4), Y0
	VSUBPS Y4, Y0, Y0
	EXP(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (DI)(AX*4)
	VADDPS Y0, Y6, Y6
	ADDQ $8, AX
	JMP exploop
exptail:
	TESTQ DX, DX
	JZ sumreduce
	VMASKMOVPS (DI)(AX*4), Y7, Y0
	VSUBPS Y4, Y0, Y0
	EXP(Y0, Y1, Y2, Y3)
	VANDPS Y7, Y0, Y0
	VMASKMOVPS Y0, Y7, (DI)(AX*4)
	VADDPS Y0, Y6, Y6
sumreduce:
	SUMLANES
	VMOVSS ONE(CX), X5
	VDIVSS X6, X5, X5
	VBROADCASTSS X5, Y5

	// r *= 1/sum.
	XORQ AX, AX
scaleloop:
	CMPQ AX, R8
	JGE scaletail
	VMULPS (DI)(AX*4), Y5, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP scaleloop
scaletail:
	TESTQ DX, DX
	JZ done
	VMASKMOVPS (DI)(AX*4), Y7, Y0
	VMULPS Y0, Y5, Y0
	VMASKMOVPS Y0, Y7, (DI)(AX*4)
done:
	VZEROUPPER
	RET

// func softmaxBackRowAVX2(p, d *float32, n int, scale float32, c *[fmRows][8]float32)
// dot = Σ p·d in eight lanes (VMULPS then VADDPS, as the Go twin rounds),
// reduced as sumLanes; then d = (p·(d − dot))·scale.
TEXT ·softmaxBackRowAVX2(SB), NOSPLIT, $0-40
	MOVQ p+0(FP), SI
	MOVQ d+8(FP), DI
	MOVQ n+16(FP), BX
	MOVQ c+32(FP), CX
	TAILMASK

	VXORPS Y6, Y6, Y6
	XORQ AX, AX
dotloop:
	CMPQ AX, R8
	JGE dottail
	VMOVUPS (SI)(AX*4), Y0
	VMULPS (DI)(AX*4), Y0, Y0
	VADDPS Y0, Y6, Y6
	ADDQ $8, AX
	JMP dotloop
dottail:
	TESTQ DX, DX
	JZ dotreduce
	VMASKMOVPS (SI)(AX*4), Y7, Y0
	VMASKMOVPS (DI)(AX*4), Y7, Y1
	VMULPS Y1, Y0, Y0
	VADDPS Y0, Y6, Y6
dotreduce:
	SUMLANES
	VBROADCASTSS X6, Y6
	VBROADCASTSS scale+24(FP), Y5

	XORQ AX, AX
outloop:
	CMPQ AX, R8
	JGE outtail
	VMOVUPS (DI)(AX*4), Y0
	VSUBPS Y6, Y0, Y0
	VMULPS (SI)(AX*4), Y0, Y0
	VMULPS Y5, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP outloop
outtail:
	TESTQ DX, DX
	JZ done
	VMASKMOVPS (DI)(AX*4), Y7, Y0
	VMASKMOVPS (SI)(AX*4), Y7, Y1
	VSUBPS Y6, Y0, Y0
	VMULPS Y1, Y0, Y0
	VMULPS Y5, Y0, Y0
	VMASKMOVPS Y0, Y7, (DI)(AX*4)
done:
	VZEROUPPER
	RET

// func geluAVX2(y, x *float32, n int, c *[fmRows][8]float32)
TEXT ·geluAVX2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), BX
	MOVQ c+24(FP), CX
	XORQ AX, AX
geluloop:
	CMPQ AX, BX
	JGE geludone
	VMOVUPS (SI)(AX*4), Y8
	PHI
	VMULPS Y8, Y1, Y1
	VMOVUPS Y1, (DI)(AX*4)
	ADDQ $8, AX
	JMP geluloop
geludone:
	VZEROUPPER
	RET

// func geluDerivAVX2(y, der, x *float32, n int, c *[fmRows][8]float32)
TEXT ·geluDerivAVX2(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ der+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), BX
	MOVQ c+32(FP), CX
	XORQ AX, AX
derivloop:
	CMPQ AX, BX
	JGE derivdone
	VMOVUPS (SI)(AX*4), Y8
	PHI
	VMULPS Y8, Y1, Y5
	VMOVUPS Y5, (DI)(AX*4)
	VXORPS SIGNMASK(CX), Y9, Y0
	EXP(Y0, Y2, Y3, Y4)
	VMULPS ISQ2PI(CX), Y0, Y0
	VFMADD231PS Y8, Y0, Y1
	VMOVUPS Y1, (DX)(AX*4)
	ADDQ $8, AX
	JMP derivloop
derivdone:
	VZEROUPPER
	RET

// func mulAddAVX2(dst, a, b *float32, n int)
TEXT ·mulAddAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), BX
	XORQ AX, AX
muladdloop:
	CMPQ AX, BX
	JGE muladddone
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (DX)(AX*4), Y1
	VMOVUPS (DI)(AX*4), Y2
	VFMADD231PS Y1, Y0, Y2
	VMOVUPS Y2, (DI)(AX*4)
	ADDQ $8, AX
	JMP muladdloop
muladddone:
	VZEROUPPER
	RET

// func expAVX2(y, x *float32, n int, c *[fmRows][8]float32)
TEXT ·expAVX2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), BX
	MOVQ c+24(FP), CX
	XORQ AX, AX
exploop:
	CMPQ AX, BX
	JGE expdone
	VMOVUPS (SI)(AX*4), Y0
	EXP(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP exploop
expdone:
	VZEROUPPER
	RET
