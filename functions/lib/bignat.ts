// Unsigned big integers of fixed capacity: just what exact decimal <-> double
// conversion needs (see float-parse.ts and float-format.ts). Little-endian
// 32-bit limbs; `len` counts limbs up to the highest non-zero one.

const CAPACITY: i32 = 200; // 6400 bits: the largest operand needs about 3700

export class BigNat {
  limbs: StaticArray<u32> = new StaticArray<u32>(CAPACITY);
  len: i32 = 0;

  static fromU64(v: u64): BigNat {
    let b = new BigNat();
    b.setU64(v);
    return b;
  }

  setU64(v: u64): BigNat {
    unchecked(this.limbs[0] = <u32>v);
    unchecked(this.limbs[1] = <u32>(v >> 32));
    this.len = v == 0 ? 0 : (v >> 32) == 0 ? 1 : 2;
    return this;
  }

  copyFrom(o: BigNat): BigNat {
    for (let i = 0; i < o.len; i++) unchecked(this.limbs[i] = o.limbs[i]);
    this.len = o.len;
    return this;
  }

  clone(): BigNat {
    return new BigNat().copyFrom(this);
  }

  isZero(): bool {
    return this.len == 0;
  }

  private grow(): void {
    if (this.len >= CAPACITY) throw new Error("BigNat capacity exceeded");
  }

  /** this = this * m + carry */
  mulSmall(m: u32, carry: u32 = 0): void {
    let c = <u64>carry;
    for (let i = 0; i < this.len; i++) {
      let p = <u64>unchecked(this.limbs[i]) * <u64>m + c;
      unchecked(this.limbs[i] = <u32>p);
      c = p >> 32;
    }
    if (c != 0) {
      this.grow();
      unchecked(this.limbs[this.len] = <u32>c);
      this.len++;
    }
  }

  /** this = this * v (v up to 64 bits) */
  mulU64(v: u64): void {
    let hi = <u32>(v >> 32);
    if (hi == 0) {
      this.mulSmall(<u32>v);
      return;
    }
    let high = mulScratch.copyFrom(this);
    high.mulSmall(hi);
    high.shl(32);
    this.mulSmall(<u32>v);
    this.add(high);
  }

  /** this = this * 5^n */
  mulPow5(n: i32): void {
    // 5^13 is the largest power of five below 2^32.
    while (n >= 13) {
      this.mulSmall(1220703125);
      n -= 13;
    }
    let p: u32 = 1;
    while (n > 0) {
      p *= 5;
      n--;
    }
    if (p != 1) this.mulSmall(p);
  }

  /** this = this * 10^n */
  mulPow10(n: i32): void {
    this.mulPow5(n);
    this.shl(n);
  }

  /** this = this << bits */
  shl(bits: i32): void {
    if (this.len == 0 || bits == 0) return;
    let words = bits >> 5;
    let rem = bits & 31;
    let newLen = this.len + words + (rem != 0 ? 1 : 0);
    if (newLen > CAPACITY) throw new Error("BigNat capacity exceeded");
    if (rem == 0) {
      for (let i = this.len - 1; i >= 0; i--) unchecked(this.limbs[i + words] = this.limbs[i]);
    } else {
      unchecked(this.limbs[this.len + words] = 0);
      for (let i = this.len - 1; i >= 0; i--) {
        let v = unchecked(this.limbs[i]);
        unchecked(this.limbs[i + words + 1] |= v >> (32 - rem));
        unchecked(this.limbs[i + words] = v << rem);
      }
    }
    for (let i = 0; i < words; i++) unchecked(this.limbs[i] = 0);
    this.len = newLen;
    this.trim();
  }

  /** this = this + o */
  add(o: BigNat): void {
    let n = max(this.len, o.len);
    let c: u64 = 0;
    for (let i = 0; i < n; i++) {
      let a = i < this.len ? <u64>unchecked(this.limbs[i]) : 0;
      let b = i < o.len ? <u64>unchecked(o.limbs[i]) : 0;
      let s = a + b + c;
      unchecked(this.limbs[i] = <u32>s);
      c = s >> 32;
    }
    this.len = n;
    if (c != 0) {
      this.grow();
      unchecked(this.limbs[this.len] = <u32>c);
      this.len++;
    }
  }

  /** this = this - o; requires this >= o */
  sub(o: BigNat): void {
    let borrow: i64 = 0;
    for (let i = 0; i < this.len; i++) {
      let b = i < o.len ? <i64>unchecked(o.limbs[i]) : 0;
      let d = <i64>unchecked(this.limbs[i]) - b - borrow;
      borrow = d < 0 ? 1 : 0;
      unchecked(this.limbs[i] = <u32>(d + (borrow << 32)));
    }
    this.trim();
  }

  private trim(): void {
    while (this.len > 0 && unchecked(this.limbs[this.len - 1]) == 0) this.len--;
  }

  /** -1, 0 or 1 as this is below, equal to or above o. */
  compare(o: BigNat): i32 {
    if (this.len != o.len) return this.len < o.len ? -1 : 1;
    for (let i = this.len - 1; i >= 0; i--) {
      let a = unchecked(this.limbs[i]);
      let b = unchecked(o.limbs[i]);
      if (a != b) return a < b ? -1 : 1;
    }
    return 0;
  }
}

// Scratch for mulU64, allocated once: conversions run per number and must
// not feed the garbage collector.
const mulScratch = new BigNat();
