/**
 * A red-black tree keyed by a number (an address), with node objects as lib/rbtree.c keeps them
 * (parent pointer, colour, two children). Used by the `rbtree` swiotlb design (Catalin
 * Marinas's suggestion for the per-device index of dynamic bounce buffers) and as the mechanics
 * behind the maple-tree cost model of `rfc-dynamic`.
 *
 * Lookups record how many nodes they visited in `lastSteps`, the figure a design charges as
 * its lookup cost. Keys may repeat (an equal key goes to the right), though bounce-buffer
 * addresses never do.
 *
 * Simplified: no augmented callbacks, no cached leftmost node, no RCU-safe rotations.
 */

export class RbNode<V> {
  left: RbNode<V> | null = null;
  right: RbNode<V> | null = null;
  parent: RbNode<V> | null = null;
  red = true;
  constructor(
    readonly key: number,
    public value: V,
  ) {}
}

export class RbTree<V> {
  root: RbNode<V> | null = null;
  size = 0;
  /** Nodes visited by the last lookup (floor / find). */
  lastSteps = 0;

  /** rb_insert: a new node for (key, value), rebalanced. */
  insert(key: number, value: V): RbNode<V> {
    const z = new RbNode(key, value);
    let parent: RbNode<V> | null = null;
    let x = this.root;
    while (x !== null) {
      parent = x;
      x = key < x.key ? x.left : x.right;
    }
    z.parent = parent;
    if (parent === null) this.root = z;
    else if (key < parent.key) parent.left = z;
    else parent.right = z;
    this.size++;
    this.insertFixup(z);
    return z;
  }

  /** The node with the greatest key <= key (the buffer that may contain an address), or null. */
  floor(key: number): RbNode<V> | null {
    let x = this.root;
    let best: RbNode<V> | null = null;
    let steps = 0;
    while (x !== null) {
      steps++;
      if (x.key === key) {
        best = x;
        break;
      }
      if (x.key < key) {
        best = x;
        x = x.right;
      } else x = x.left;
    }
    this.lastSteps = steps;
    return best;
  }

  /** The node with exactly this key, or null. */
  find(key: number): RbNode<V> | null {
    const n = this.floor(key);
    return n !== null && n.key === key ? n : null;
  }

  /** rb_erase: unlink `z` (a node of this tree) and rebalance. */
  erase(z: RbNode<V>): void {
    let y = z;
    let yRed = y.red;
    let x: RbNode<V> | null;
    let xParent: RbNode<V> | null;
    if (z.left === null) {
      x = z.right;
      xParent = z.parent;
      this.transplant(z, z.right);
    } else if (z.right === null) {
      x = z.left;
      xParent = z.parent;
      this.transplant(z, z.left);
    } else {
      y = z.right;
      while (y.left !== null) y = y.left;
      yRed = y.red;
      x = y.right;
      if (y.parent === z) xParent = y;
      else {
        xParent = y.parent;
        this.transplant(y, y.right);
        y.right = z.right;
        y.right.parent = y;
      }
      this.transplant(z, y);
      y.left = z.left;
      y.left.parent = y;
      y.red = z.red;
    }
    z.left = z.right = z.parent = null;
    this.size--;
    if (!yRed) this.eraseFixup(x, xParent);
  }

  /** In-order first node. */
  first(): RbNode<V> | null {
    let x = this.root;
    if (x === null) return null;
    while (x.left !== null) x = x.left;
    return x;
  }

  /** In-order successor. */
  next(n: RbNode<V>): RbNode<V> | null {
    if (n.right !== null) {
      let x = n.right;
      while (x.left !== null) x = x.left;
      return x;
    }
    let x: RbNode<V> = n;
    let p = x.parent;
    while (p !== null && x === p.right) {
      x = p;
      p = p.parent;
    }
    return p;
  }

  /** Nodes on the longest root-to-leaf path. */
  height(): number {
    const h = (n: RbNode<V> | null): number => (n === null ? 0 : 1 + Math.max(h(n.left), h(n.right)));
    return h(this.root);
  }

  /**
   * The red-black and search-tree rules (tests): black root, no red node with a red child,
   * equal black height on every path, keys in order, consistent parent pointers and size.
   */
  check(): string | null {
    if (this.root !== null && this.root.red) return 'root is red';
    if (this.root !== null && this.root.parent !== null) return 'root has a parent';
    let count = 0;
    let err: string | null = null;
    const walk = (n: RbNode<V> | null, lo: number, hi: number): number => {
      if (n === null || err !== null) return 1;
      count++;
      if (n.key < lo || n.key > hi) err = `key ${n.key} out of order`;
      for (const c of [n.left, n.right]) {
        if (c !== null && c.parent !== n) err = `bad parent pointer under ${n.key}`;
        if (c !== null && n.red && c.red) err = `red node ${n.key} has a red child`;
      }
      const l = walk(n.left, lo, n.key);
      const r = walk(n.right, n.key, hi);
      if (l !== r) err = `black heights differ under ${n.key}: ${l} vs ${r}`;
      return l + (n.red ? 0 : 1);
    };
    walk(this.root, -Infinity, Infinity);
    if (err !== null) return err;
    if (count !== this.size) return `size ${this.size}, ${count} nodes`;
    return null;
  }

  private rotateLeft(x: RbNode<V>): void {
    const y = x.right!;
    x.right = y.left;
    if (y.left !== null) y.left.parent = x;
    y.parent = x.parent;
    this.transplantLink(x, y);
    y.left = x;
    x.parent = y;
  }

  private rotateRight(x: RbNode<V>): void {
    const y = x.left!;
    x.left = y.right;
    if (y.right !== null) y.right.parent = x;
    y.parent = x.parent;
    this.transplantLink(x, y);
    y.right = x;
    x.parent = y;
  }

  /** Point x's parent (or the root) at y instead of x. */
  private transplantLink(x: RbNode<V>, y: RbNode<V>): void {
    const p = x.parent;
    if (p === null) this.root = y;
    else if (x === p.left) p.left = y;
    else p.right = y;
  }

  /** Replace subtree u by subtree v (v may be null). */
  private transplant(u: RbNode<V>, v: RbNode<V> | null): void {
    const p = u.parent;
    if (p === null) this.root = v;
    else if (u === p.left) p.left = v;
    else p.right = v;
    if (v !== null) v.parent = p;
  }

  private insertFixup(z: RbNode<V>): void {
    while (z.parent !== null && z.parent.red) {
      let p: RbNode<V> = z.parent;
      const g = p.parent!; // a red node is never the root
      if (p === g.left) {
        const u = g.right;
        if (u !== null && u.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.right) {
            z = p;
            this.rotateLeft(z);
            p = z.parent!;
          }
          p.red = false;
          g.red = true;
          this.rotateRight(g);
        }
      } else {
        const u = g.left;
        if (u !== null && u.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.left) {
            z = p;
            this.rotateRight(z);
            p = z.parent!;
          }
          p.red = false;
          g.red = true;
          this.rotateLeft(g);
        }
      }
    }
    this.root!.red = false;
  }

  private eraseFixup(x: RbNode<V> | null, parent: RbNode<V> | null): void {
    const isBlack = (n: RbNode<V> | null): boolean => n === null || !n.red;
    while (x !== this.root && isBlack(x) && parent !== null) {
      if (x === parent.left) {
        let w = parent.right!; // the sibling of a doubly black node exists
        if (w.red) {
          w.red = false;
          parent.red = true;
          this.rotateLeft(parent);
          w = parent.right!;
        }
        if (isBlack(w.left) && isBlack(w.right)) {
          w.red = true;
          x = parent;
          parent = x.parent;
        } else {
          if (isBlack(w.right)) {
            w.left!.red = false;
            w.red = true;
            this.rotateRight(w);
            w = parent.right!;
          }
          w.red = parent.red;
          parent.red = false;
          if (w.right !== null) w.right.red = false;
          this.rotateLeft(parent);
          x = this.root;
          break;
        }
      } else {
        let w = parent.left!;
        if (w.red) {
          w.red = false;
          parent.red = true;
          this.rotateRight(parent);
          w = parent.left!;
        }
        if (isBlack(w.left) && isBlack(w.right)) {
          w.red = true;
          x = parent;
          parent = x.parent;
        } else {
          if (isBlack(w.left)) {
            w.right!.red = false;
            w.red = true;
            this.rotateLeft(w);
            w = parent.left!;
          }
          w.red = parent.red;
          parent.red = false;
          if (w.left !== null) w.left.red = false;
          this.rotateRight(parent);
          x = this.root;
          break;
        }
      }
    }
    if (x !== null) x.red = false;
  }
}
