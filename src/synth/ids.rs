//! Which citizen id belongs to index `i` of a population, without collisions and without
//! looking at any other index.
//!
//! An id is a bucket (province, birth year, sex) plus six digits, so a population of N
//! needs every bucket's digits to be distinct. Drawing them at random collides (birthday
//! paradox: thousands of times at 10M). Instead:
//!
//! 1. A fixed table of 2^20 *slots* gives each bucket a number of slots proportional to how
//!    many people it holds (province population × age pyramid × sex ratio), in shuffled order.
//! 2. Index `i` lies in cycle `c = i / 2^20`; a keyed permutation of `i mod 2^20` (keyed by the
//!    seed and `c`) picks its slot `s`, hence its bucket `b`.
//! 3. Its rank within `b` is `c × slots(b) + (position of s among b's slots)`: distinct for
//!    distinct indexes, and below `(c + 1) × slots(b)`.
//! 4. A keyed permutation of 0..1,000,000 turns the rank into the six digits.
//!
//! Ranks stay below 1,000,000, hence ids stay unique, for every index below
//! [`max_population`] (about 1.1 billion, ten times Vietnam).

use std::sync::OnceLock;

use super::rng::{Rng, hash2, permute_2p20, permute_million, unpermute_2p20};
use super::tables::{PROVINCE_INFO, birth_year_weight, male_per_mille};
use super::{FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR, SNAPSHOT_YEAR};
use crate::id::{CitizenId, IdSex};

const SLOT_BITS: u32 = 20;
const SLOTS: usize = 1 << SLOT_BITS;
/// The six "random" digits of an id.
const DIGIT_SPACE: u64 = 1_000_000;
const YEARS: usize = (LAST_BIRTH_YEAR - FIRST_BIRTH_YEAR + 1) as usize;

/// Fixed key of the slot shuffle: the table is the same for every seed and forever.
const TABLE_KEY: u64 = 0x7ab1_e5ee_d000_0001;
/// Domain separators, so the slot and digit permutations of one seed are unrelated.
const SLOT_KEY: u64 = 0x5107_5107_5107_5107;
const DIGIT_KEY: u64 = 0xD161_7D16_17D1_617D;

struct SlotTable {
    /// Bucket of each slot.
    bucket: Vec<u16>,
    /// Position of each slot among the slots of its bucket.
    position: Vec<u16>,
    /// Slots per bucket.
    slots_of: Vec<u32>,
    max_population: u64,
}

/// A bucket number: `(province index × YEARS + year index) × 2 + female`.
fn bucket_parts(b: usize) -> (u16, i32, IdSex) {
    let province = PROVINCE_INFO[b / (YEARS * 2)].0;
    let year = FIRST_BIRTH_YEAR + (b / 2 % YEARS) as i32;
    let sex = if b.is_multiple_of(2) {
        IdSex::Male
    } else {
        IdSex::Female
    };
    (province, year, sex)
}

fn bucket_weight(b: usize) -> u64 {
    let people = u64::from(PROVINCE_INFO[b / (YEARS * 2)].1);
    let (_, year, sex) = bucket_parts(b);
    let age = SNAPSHOT_YEAR - 1 - year;
    let men = male_per_mille(age);
    let share = if sex == IdSex::Male { men } else { 1000 - men };
    people * birth_year_weight(age) * share
}

impl SlotTable {
    fn build() -> SlotTable {
        let buckets = PROVINCE_INFO.len() * YEARS * 2;
        let weights: Vec<u64> = (0..buckets).map(bucket_weight).collect();
        let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        // Largest-remainder apportionment: exactly SLOTS slots, each bucket within one slot of
        // its exact share. Ties break by bucket number, so the table never varies.
        let mut slots_of = Vec::with_capacity(buckets);
        let mut remainders = Vec::with_capacity(buckets);
        for (b, &w) in weights.iter().enumerate() {
            let exact = u128::from(w) * SLOTS as u128;
            slots_of.push((exact / total) as u32);
            remainders.push((exact % total, b));
        }
        let given: usize = slots_of.iter().map(|&n| n as usize).sum();
        remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, b) in &remainders[..SLOTS - given] {
            slots_of[b] += 1;
        }

        let mut bucket: Vec<u16> = Vec::with_capacity(SLOTS);
        for (b, &n) in slots_of.iter().enumerate() {
            bucket.extend(std::iter::repeat_n(b as u16, n as usize));
        }
        // Fisher–Yates with a fixed key: the first indexes of any population are then a fair
        // sample of the whole, which matters when a small store is seeded.
        let mut rng = Rng::new(TABLE_KEY);
        for i in (1..SLOTS).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            bucket.swap(i, j);
        }
        let mut seen = vec![0u16; buckets];
        let position = bucket
            .iter()
            .map(|&b| {
                let p = seen[b as usize];
                seen[b as usize] += 1;
                p
            })
            .collect();

        let widest = u64::from(slots_of.iter().copied().max().unwrap_or(1).max(1));
        SlotTable {
            bucket,
            position,
            slots_of,
            max_population: DIGIT_SPACE / widest * SLOTS as u64,
        }
    }
}

fn table() -> &'static SlotTable {
    static TABLE: OnceLock<SlotTable> = OnceLock::new();
    TABLE.get_or_init(SlotTable::build)
}

/// How many indexes have distinct ids (for any seed).
pub(super) fn max_population() -> u64 {
    table().max_population
}

/// The id of index `index` of the population `seed`. Beyond [`max_population`] ids repeat.
pub(super) fn id_at(seed: u64, index: u64) -> CitizenId {
    let t = table();
    let cycle = index >> SLOT_BITS;
    let offset = (index & (SLOTS as u64 - 1)) as u32;
    let slot = permute_2p20(hash2(seed ^ SLOT_KEY, cycle), offset) as usize;
    let b = usize::from(t.bucket[slot]);
    let rank = cycle * u64::from(t.slots_of[b]) + u64::from(t.position[slot]);
    let digits = permute_million(
        hash2(seed ^ DIGIT_KEY, b as u64),
        (rank % DIGIT_SPACE) as u32,
    );
    let (province, year, sex) = bucket_parts(b);
    CitizenId::from_parts(province, year, sex, digits)
}

/// The buckets in the order of their ids, and each bucket's slots: what the seeder needs to
/// write records in key order. Built on first use, apart from [`SlotTable`], because only the
/// seeder needs it (another 4 MiB).
struct BucketOrder {
    /// Bucket numbers sorted by the ids they hold.
    by_key: Vec<u16>,
    /// Slots grouped by bucket: bucket `b` owns `slots[start[b]..start[b + 1]]`.
    start: Vec<u32>,
    slots: Vec<u32>,
}

fn bucket_order() -> &'static BucketOrder {
    static ORDER: OnceLock<BucketOrder> = OnceLock::new();
    ORDER.get_or_init(|| {
        let t = table();
        let buckets = t.slots_of.len();
        let mut by_key: Vec<u16> = (0..buckets as u16).collect();
        by_key.sort_unstable_by_key(|&b| {
            let (province, year, sex) = bucket_parts(usize::from(b));
            CitizenId::from_parts(province, year, sex, 0)
        });
        let mut start = Vec::with_capacity(buckets + 1);
        start.push(0u32);
        for &n in &t.slots_of {
            start.push(start[start.len() - 1] + n);
        }
        let mut fill = start.clone();
        let mut slots = vec![0u32; SLOTS];
        for (slot, &b) in t.bucket.iter().enumerate() {
            let at = &mut fill[usize::from(b)];
            slots[*at as usize] = slot as u32;
            *at += 1;
        }
        BucketOrder {
            by_key,
            start,
            slots,
        }
    })
}

/// Bucket numbers in the order of the ids they hold, with each bucket's share of the
/// population (its slot count), so the seeder can split the key space evenly.
pub(super) fn buckets_by_key() -> impl ExactSizeIterator<Item = (u16, u32)> {
    let t = table();
    bucket_order()
        .by_key
        .iter()
        .map(|&b| (b, t.slots_of[usize::from(b)]))
}

/// Appends to `out` every index below `count` whose id lies in bucket `b`, by running the
/// slot permutation of each cycle backwards over the bucket's slots.
pub(super) fn indexes_in_bucket(seed: u64, b: u16, count: u64, out: &mut Vec<u64>) {
    let order = bucket_order();
    let b = usize::from(b);
    let slots = &order.slots[order.start[b] as usize..order.start[b + 1] as usize];
    for cycle in 0..count.div_ceil(SLOTS as u64) {
        let key = hash2(seed ^ SLOT_KEY, cycle);
        for &slot in slots {
            let index = cycle << SLOT_BITS | u64::from(unpermute_2p20(key, slot));
            if index < count {
                out.push(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn table_covers_every_slot_and_supports_a_billion() {
        let t = table();
        assert_eq!(t.slots_of.iter().map(|&n| n as usize).sum::<usize>(), SLOTS);
        assert!(t.max_population >= 1_000_000_000, "{}", t.max_population);
        // Every bucket's positions are 0..slots_of(b).
        let mut seen = vec![0u32; t.slots_of.len()];
        for (&b, &p) in t.bucket.iter().zip(&t.position) {
            assert_eq!(u32::from(p), seen[usize::from(b)]);
            seen[usize::from(b)] += 1;
        }
        assert_eq!(seen, t.slots_of);
    }

    #[test]
    fn ids_are_unique_over_a_few_hundred_thousand() {
        for seed in [0, 42] {
            let mut ids = HashSet::with_capacity(300_000);
            for i in 0..300_000 {
                assert!(
                    ids.insert(id_at(seed, i)),
                    "seed {seed}: index {i} repeats an id"
                );
            }
        }
    }

    #[test]
    fn ranks_stay_in_range_up_to_the_maximum() {
        // The last full cycle below the maximum is the one closest to overflowing: every rank
        // there must still fit six digits (ranks are recomputed here, not trusted).
        let t = table();
        let last_cycle = max_population() / SLOTS as u64 - 1;
        for b in 0..t.slots_of.len() {
            let top = (last_cycle + 1) * u64::from(t.slots_of[b]);
            assert!(top <= DIGIT_SPACE, "bucket {b} needs rank {top}");
        }
        // And the last two cycles are collision-free, as a cross-check of the arithmetic.
        let (start, end) = ((last_cycle - 1) << SLOT_BITS, (last_cycle + 1) << SLOT_BITS);
        let mut ids = HashSet::with_capacity(2 * SLOTS);
        for i in start..end {
            assert!(ids.insert(id_at(7, i)), "index {i} repeats an id");
        }
    }

    #[test]
    fn buckets_partition_the_indexes_in_key_order() {
        // Over two cycles, so the cycle arithmetic is exercised too.
        let (seed, count) = (5, SLOTS as u64 + 12_345);
        let mut seen = vec![false; count as usize];
        let mut last_id = None;
        let mut indexes = Vec::new();
        assert_eq!(buckets_by_key().len(), table().slots_of.len());
        for (b, _) in buckets_by_key() {
            indexes.clear();
            indexes_in_bucket(seed, b, count, &mut indexes);
            let mut ids: Vec<CitizenId> = indexes.iter().map(|&i| id_at(seed, i)).collect();
            for (&i, id) in indexes.iter().zip(&ids) {
                assert!(
                    !std::mem::replace(&mut seen[i as usize], true),
                    "index {i} twice"
                );
                let (province, year, sex) = bucket_parts(usize::from(b));
                assert_eq!(
                    (id.province_code(), id.birth_year(), id.sex()),
                    (province, year, sex)
                );
            }
            ids.sort_unstable();
            if let (Some(prev), Some(first)) = (last_id, ids.first()) {
                assert!(prev < *first, "bucket {b} is out of key order");
            }
            last_id = ids.last().copied().or(last_id);
        }
        assert!(seen.iter().all(|&s| s), "some index is in no bucket");
    }
}
