import {expect} from 'chai'

import {
  ACTIONS, MODEL, MfcStackModel, TUNED, biofilmStep, cellVoltage, consumptionRate, currentDensity, mulberry32,
  reservoirStep, reward, stateOf,
} from '../../../src/services/data/simulator.js'

describe('simulator model (§10.2 equations, hand-checked)', () => {
  it('grows a 1 μm biofilm at 25 mM by about 0.32 % per 0.1 h step', () => {
    // φ = 1e-6 m · √(0.05 / 6e-10) = 1e-6 · 9128.709 = 0.0091287
    // η = tanh φ / φ ≈ 1 − φ²/3 = 0.99997222
    // μ = η · 0.05 · 25 / (5 + 25) = 0.99997222 · 0.0416667 = 0.0416655
    // Δ = (μ − 0.01) · 0.1 = 0.00316655 (inside the ±0.005 clip) → L = 1.00316655
    expect(biofilmStep(1, 25, 0.1)).to.be.closeTo(1.003_166_55, 1e-8)
  })

  it('clips the change to ±5 %/h and the thickness to [0.1, 200] μm', () => {
    // At S = 0 the net rate is −kd = −0.01/h: Δ = −0.001 per 0.1 h, inside the clip.
    expect(biofilmStep(10, 0, 0.1)).to.be.closeTo(10 * (1 - 0.001), 1e-12)
    // dt = 10 h: (μ − kd)·dt = 0.0316655·10 = 0.316655, inside the clip 0.05·10 = 0.5.
    expect(biofilmStep(1, 25, 10)).to.be.closeTo(1 + 0.316_655_09, 1e-6)
    // dt = 0.1 h at 25 mM is clipped only when μ − kd > 0.05, which cannot happen (μmax = 0.05),
    // so check the floor instead: starving 100 h gives Δ = −0.01·100 = −1 → L·0 → floor 0.1 μm.
    expect(biofilmStep(5, 0, 100)).to.equal(MODEL.minBiofilmUm)
    expect(biofilmStep(199.9, 25, 0.1)).to.equal(MODEL.maxBiofilmUm)
  })

  it('reduces growth by the Thiele effectiveness for thick films', () => {
    // L = 150 μm: φ = 150e-6 · 9128.709 = 1.36931, η = tanh(1.36931)/1.36931 = 0.641591
    // μ = 0.641591 · 0.0416667 = 0.0267329; Δ = (0.0267329 − 0.01)·0.1 = 0.00167329
    expect(biofilmStep(150, 25, 0.1)).to.be.closeTo(150 * 1.001_673_29, 1e-5)
  })

  it('computes current density and power per cell', () => {
    // j = 2.0 · min(1.00316655/100, 1) · 25/30 = 0.01671944 A/m²; P = j · 0.001 m² · 0.35 V = 5.8518e-6 W
    expect(currentDensity(1.003_166_55, 25)).to.be.closeTo(0.016_719_44, 1e-8)
    // Saturates at 100 μm: j = 2 · 1 · 25/30 = 1.6667; P = 0.58333 mW per cell at 10 cm²
    expect(currentDensity(150, 25)).to.be.closeTo(5 / 3, 1e-12)
  })

  it('computes the consumption rate from mean biofilm and mean substrate', () => {
    // r = 1.0 · (100/200) · (45/(5+45)) = 0.5 · 0.9 = 0.45 mmol/L/h
    expect(consumptionRate(100, 45)).to.be.closeTo(0.45, 1e-12)
  })

  it('applies dt once to the reservoir balance (the original applied it twice)', () => {
    // dC = (a − r·V)/V · dt = (0 − 1.0·1)/1 · 0.1 = −0.1 → 24.9 (the original gave 24.99)
    expect(reservoirStep(25, 0, 1.0, 1.0, 0.1)).to.be.closeTo(24.9, 1e-12)
    // Ten 0.1 h steps consume the same as one 1 h step: consumption is dt-invariant.
    let c = 25
    for (let i = 0; i < 10; i++) c = reservoirStep(c, 0.3, 1.0, 1.0, 0.1)
    expect(c).to.be.closeTo(reservoirStep(25, 0.3, 1.0, 1.0, 1.0), 1e-12)
    expect(reservoirStep(0.15, -1, 0, 1, 1)).to.equal(MODEL.minConcentration)
    expect(reservoirStep(99.9, 1, 0, 1, 1)).to.equal(MODEL.maxConcentration)
  })

  it('scores the reward like the original', () => {
    // At target with no power: −86.3082652695326·e⁰ + 0 + 50 = −36.3082652695326
    expect(reward(25, 25, 0)).to.be.closeTo(-36.308_265_27, 1e-8)
    // |dev| = 10: −86.3082652695326·e¹ = −234.61019 (no bonus)
    expect(reward(35, 25, 0)).to.be.closeTo(-234.610_189_13, 1e-6)
    // The bonus needs |dev| < 2 strictly.
    expect(reward(27, 25, 0)).to.be.closeTo(-86.308_265_27 * Math.exp(0.2), 1e-8)
    // Power term: 18.450199366779497·ln(1 + 0.001) = 0.0184410
    expect(reward(25, 25, 0.001) - reward(25, 25, 0)).to.be.closeTo(0.018_441_0, 1e-6)
  })

  it('maps concentrations to 100 states and gives the terminal voltage OCV − j·R_int', () => {
    expect(stateOf(24.99)).to.equal(24)
    expect(stateOf(100)).to.equal(99)
    expect(stateOf(0.1)).to.equal(0)
    // 0.8 − 1.6667·0.2 = 0.46667 V
    expect(cellVoltage(5 / 3)).to.be.closeTo(0.466_667, 1e-6)
    expect(cellVoltage(0)).to.equal(0.8)
  })

  it('runs one full greedy step exactly as the equations say', () => {
    const model = new MfcStackModel({epsilonInitial: 0, seed: 1})
    const r = model.step()
    // Greedy over an all-zero row: ties → action 0 = −0.2 mmol/h.
    expect(r.q_action).to.equal(0)
    expect(r.substrate_addition_rate).to.equal(-0.2)
    // Power uses the grown film (1.00316655 μm) and the previous cell concentration (25 mM):
    // 5 cells · 5.8518049e-6 W = 2.9259024e-5 W
    expect(r.total_power).to.be.closeTo(2.925_902_4e-5, 1e-12)
    // r = 1.0 · (1.00316655/200) · (25/30) = 0.00417986; C = 25 + (−0.2 − 0.00417986)·0.1 = 24.979582014
    expect(r.reservoir_concentration).to.be.closeTo(24.979_582_014, 1e-9)
    // Mixing: S = 25 + 0.8·(24.979582014 − 25)·0.1 = 24.998366561; outlet = mean = the same
    expect(r.outlet_concentration).to.be.closeTo(24.998_366_561, 1e-9)
    // R = −86.30826527·exp(0.020417986/10) + 18.45019937·ln(1 + 2.9259e-5) + 50 = −36.48412957
    expect(r.reward).to.be.closeTo(-36.484_129_57, 1e-7)
    // Q[25][0] = 0 + lr·(R + γ·max Q[24] − 0) = 0.01069832·(−36.48412957) = −0.39031892
    expect(model.qTable[25 * ACTIONS.length]).to.be.closeTo(-0.390_318_92, 1e-8)
    // ε = max(0 · decay, ε_min) = ε_min
    expect(r.epsilon).to.equal(TUNED.epsilonMin)
    expect(model.totalSubstrateAdded).to.equal(0)
    expect(r.time_hours).to.equal(0.1)
  })

  it('decays epsilon by the tuned factor each step', () => {
    const model = new MfcStackModel({seed: 3})
    model.step()
    model.step()
    expect(model.epsilon).to.be.closeTo(TUNED.epsilonInitial * TUNED.epsilonDecay ** 2, 1e-15)
  })

  it('is deterministic by seed and differs across seeds', () => {
    const run = (seed: number) => {
      const model = new MfcStackModel({seed})
      return Array.from({length: 200}, () => model.step())
    }

    expect(run(7)).to.deep.equal(run(7))
    expect(run(7).map((s) => s.q_action)).to.not.deep.equal(run(8).map((s) => s.q_action))
    expect(mulberry32(1)()).to.equal(mulberry32(1)())
  })

  it('keeps a 24 h default run physical and produces the final metrics', () => {
    const model = new MfcStackModel()
    let last
    for (let i = 0; i < 240; i++) last = model.step()
    expect(last!.time_hours).to.equal(24)
    const metrics = model.metrics()!
    expect(metrics.steps).to.equal(240)
    for (const c of [metrics.final_reservoir_concentration, metrics.mean_concentration]) expect(c).to.be.within(0.1, 100)
    expect(metrics.control_effectiveness_5mM).to.be.at.least(metrics.control_effectiveness_2mM)
    expect(metrics.mean_power).to.be.greaterThan(0)
    // Biofilm grows at ~0.3 %/step: after 240 steps roughly 1.0032^240 ≈ 2.1 μm
    for (const l of last!.biofilm_thicknesses) expect(l).to.be.within(1.5, 2.5)
    for (const v of last!.cell_voltages) expect(v).to.be.within(0.7, 0.85)
    for (const ph of last!.cell_ph) expect(ph).to.be.within(6.5, 7.5)
    for (const t of last!.cell_temperatures) expect(t).to.be.within(29, 31)
  })

  it('computes metrics like calculate_final_metrics on a known series', () => {
    // Greedy (ε = 0) from a fresh table: recompute numpy's mean/std/max over the same 20 samples.
    const model = new MfcStackModel({epsilonInitial: 0, seed: 1})
    const series: number[] = []
    for (let i = 0; i < 20; i++) series.push(model.step().reservoir_concentration)
    const metrics = model.metrics()!
    const mean = series.reduce((a, b) => a + b) / series.length
    const std = Math.sqrt(series.reduce((a, b) => a + (b - mean) ** 2, 0) / series.length)
    expect(metrics.mean_concentration).to.be.closeTo(mean, 1e-9)
    expect(metrics.std_concentration).to.be.closeTo(std, 1e-9)
    expect(metrics.max_deviation).to.be.closeTo(Math.max(...series.map((c) => Math.abs(c - 25))), 1e-12)
    expect(metrics.stability_coefficient_variation).to.be.closeTo((std / mean) * 100, 1e-6)
    expect(metrics.final_reservoir_concentration).to.equal(series.at(-1))
  })
})
