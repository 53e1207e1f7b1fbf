package loope

import "testing"

func TestPESIRuledOutConventions(t *testing.T) {
	// docs/paper.md §5.3/§5.5: the alternatives it rejects give these
	// values for the raster sinusoid (D 768, 14×14); refPESI with the
	// switches reproduces them, which checks refPESI's conventions too.
	pe := fixedPatches(t, "sin1d", 768, 14, 14)
	// §5.5/§10 #6: positions divided by N = 196 give "A_SU ≈ 0.002" (one
	// significant digit), and §5.3: N = 1 direction gives "about 1.65".
	pos := OrderPositions(Raster(14, 14))
	for i := range pos {
		pos[i] /= 196
	}
	checkNear(t, "A_SU with X/N", PESI(DropCLS(Sinusoid1D(pos, 768, nil), 768), 768, 14, 14, 60).ASU, 0.002, 5e-4)
	checkNear(t, "M_D with N = 1", PESI(pe, 768, 14, 14, 1).MD, 1.65, 5e-3)
	if testing.Short() {
		t.Skip("brute force at D 768")
	}
	s := refPESI(pe, 768, 14, 14, 60, refPESIOpts{skipR0: true})
	checkNear(t, "M_U without r = 0", s.MU, 1.9466, 5e-5)
	checkNear(t, "A_SU without r = 0", s.ASU, 0.1331, 5e-5)
	s = refPESI(pe, 768, 14, 14, 60, refPESIOpts{skipCentre: true})
	checkNear(t, "M_D without centre", s.MD, 1.4893, 5e-5)
	s = refPESI(pe, 768, 14, 14, 60, refPESIOpts{noSnap: true})
	checkNear(t, "M_D with plain floor", s.MD, 1.4859, 5e-5)
	checkScores(t, "naive, spec conventions", refPESI(pe, 768, 14, 14, 60, refPESIOpts{}), PESIScores{1.9567, 1.4905, 0.1243}, 5e-5)
}
