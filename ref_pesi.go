// This file holds the reference PESI: M_U, M_D and A_SU computed by brute
// force, the plain twin of pesi.go's fast path (which precomputes the
// geometry and shares a ranker). Nothing is shared with pesi.go but the
// PESIScores type: similarities per pair from scratch, bins and buckets
// found by scanning the whole grid for every level, float distances, and
// ranks by counting. pesi_test.go checks PESI against it, and both against
// the paper's Table 5.

package loope

import "math"

// RefPESI returns PESI (M_U, M_D, A_SU) of table (h·w, dim), the patch rows
// of a PE in raster order without CLS, over directions direction buckets,
// with the conventions PESI uses (the r = 0 bin counts, the centre cell
// is in every bucket's ranking, angles snap onto bucket boundaries within
// 1e-9, ranks tie within 1e-12). It is O((h·w)²·dim): a reference, not a
// tool.
func RefPESI(table []float64, dim, h, w, directions int) PESIScores {
	return refPESI(table, dim, h, w, directions, refPESIOpts{})
}

// refPESIOpts switches the conventions of refPESI, so tests can also
// reproduce the wrong conventions docs/paper.md §5.3/§5.5 rules out.
type refPESIOpts struct {
	skipR0     bool // drop the r = 0 bin from M_U and A_SU
	skipCentre bool // drop the centre cell from M_D
	noSnap     bool // plain floor of θ/δ (no snapping onto bucket boundaries)
}

// refRanks returns 1-based average ranks by counting (O(n²)): rank =
// 1 + #{smaller} + (#{equal} − 1)/2, "equal" meaning within tol.
func refRanks(v []float64, tol float64) []float64 {
	r := make([]float64, len(v))
	for i, a := range v {
		less, eq := 0, 0
		for _, b := range v {
			switch {
			case math.Abs(a-b) <= tol:
				eq++
			case b < a:
				less++
			}
		}
		r[i] = 1 + float64(less) + float64(eq-1)/2
	}
	return r
}

// refSpearman is the Pearson correlation of refRanks, 0 if undefined.
func refSpearman(x, y []float64, tol float64) float64 {
	if len(x) < 2 {
		return 0
	}
	rx, ry := refRanks(x, tol), refRanks(y, tol)
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx /= float64(len(rx))
	my /= float64(len(ry))
	var c, vx, vy float64
	for i := range rx {
		c += (rx[i] - mx) * (ry[i] - my)
		vx += (rx[i] - mx) * (rx[i] - mx)
		vy += (ry[i] - my) * (ry[i] - my)
	}
	rho := c / math.Sqrt(vx*vy)
	if math.IsNaN(rho) {
		return 0
	}
	return rho
}

// refPESI is RefPESI with switchable conventions: similarities per
// pair from scratch, bins and buckets found by scanning the whole grid for
// each level, float distances, counting ranks.
func refPESI(table []float64, dim, h, w, nDir int, o refPESIOpts) PESIScores {
	cell := func(i, j int) []float64 { return table[(i*w+j)*dim : (i*w+j+1)*dim] }
	cos := func(a, b []float64) float64 {
		var ab, aa, bb float64
		for k := range a {
			ab += a[k] * b[k]
			aa += a[k] * a[k]
			bb += b[k] * b[k]
		}
		return ab / math.Sqrt(aa*bb)
	}
	maxR := int(math.Round(math.Hypot(float64(h-1), float64(w-1))))
	var s PESIScores
	for x := range h {
		for y := range w {
			sim := make([][]float64, h)
			for i := range h {
				sim[i] = make([]float64, w)
				for j := range w {
					sim[i][j] = cos(cell(x, y), cell(i, j))
				}
			}
			var levels, means []float64
			var cvSum float64
			for r := 0; r <= maxR; r++ {
				if r == 0 && o.skipR0 {
					continue
				}
				var vals []float64
				for i := range h {
					for j := range w {
						if int(math.Round(math.Hypot(float64(i-x), float64(j-y)))) == r {
							vals = append(vals, sim[i][j])
						}
					}
				}
				if len(vals) == 0 {
					continue
				}
				var m, v float64
				for _, e := range vals {
					m += e
				}
				m /= float64(len(vals))
				for _, e := range vals {
					v += (e - m) * (e - m)
				}
				levels = append(levels, float64(r))
				means = append(means, m)
				cvSum += math.Sqrt(v/float64(len(vals))) / m
			}
			s.MU += 1 - refSpearman(levels, means, 1e-12)
			s.ASU += cvSum / float64(len(levels))
			var rhoSum float64
			for k := range nDir {
				var ds, es []float64
				for i := range h {
					for j := range w {
						if i == x && j == y && o.skipCentre {
							continue
						}
						q := math.Atan2(float64(j-y), float64(i-x)) * float64(nDir) / (2 * math.Pi)
						if !o.noSnap {
							q += 1e-9
						}
						b := (int(math.Floor(q)) + nDir) % nDir
						if b == k {
							ds = append(ds, math.Hypot(float64(i-x), float64(j-y)))
							es = append(es, sim[i][j])
						}
					}
				}
				rhoSum += refSpearman(ds, es, 1e-12)
			}
			s.MD += 1 - rhoSum/float64(nDir)
		}
	}
	n := float64(h * w)
	return PESIScores{s.MU / n, s.MD / n, s.ASU / n}
}
