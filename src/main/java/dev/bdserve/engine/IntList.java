package dev.bdserve.engine;

import java.util.Arrays;

/** A growable list of ints without boxing: a sequence's tokens or its KV block table. */
final class IntList {
    private int[] a;
    private int n;

    IntList(int capacity) { a = new int[Math.max(4, capacity)]; }

    IntList(int[] initial) {
        a = Arrays.copyOf(initial, Math.max(4, initial.length + initial.length / 2));
        n = initial.length;
    }

    int size() { return n; }

    boolean isEmpty() { return n == 0; }

    int get(int i) {
        if (i >= n) throw new IndexOutOfBoundsException(i + " of " + n);
        return a[i];
    }

    void add(int v) {
        if (n == a.length) a = Arrays.copyOf(a, a.length * 2);
        a[n++] = v;
    }

    void clear() { n = 0; }

    /** The backing array, valid in [0, size()); for reading only and only until the next add. */
    int[] raw() { return a; }

    int[] toArray() { return Arrays.copyOf(a, n); }
}
