//! A seeded synthetic population for tests, `kho demo`, `kho stress` and `kho bench`.
//!
//! [`Population`] describes `persons` people; person `i` is a pure function of `(seed, i)`
//! ([`Population::person`]), so any consumer can recompute one without replaying the rest.
//! [`Population::events`] streams what several agencies record about them, person by person:
//! - `residence` (~98% of people), `health_insurance` (~92%), `tax` and `social_insurance`
//!   (working age, ~55%), `vehicle` (adults: none to a few motorbikes, some cars, a few
//!   owners of a fleet of 10-30) — about 3.4 records a person, some people with none;
//! - ID corrections: ~1% of people have one record first filed under a mistyped ID, then
//!   upserted under the right one a while later (a later person's turn);
//! - deletions: ~3% of vehicle records are deregistered a while later.
//!
//! Distributions: birth-registration provinces weighted by their population, ages 0-100
//! from a flat-then-declining pyramid, both genders, Vietnamese family/middle/given names.
//! National IDs are `PPP G YY` from those attributes and a serial that is a bijection of `i`
//! modulo 10^6, so IDs are unique for up to a million persons (beyond that two persons
//! share an ID only if they also share province, gender and birth year and `i mod 10^6`).
//! Every ID is valid under the default [`IdRules`](super::IdRules) as long as the clock is
//! not before [`Population::reference_year`].
//!
//! The randomness is [`SplitMix64`](crate::util::SplitMix64) (no dependency): statistically
//! fine for synthetic data, not for anything secret.

mod data;
mod payload;

use std::collections::VecDeque;

use super::national_id::{Gender, NationalId};
use crate::util::SplitMix64;
use data::*;
pub use payload::{Insurance, Payload, Residence, Tax, Vehicle};

/// The draws the generator makes beyond [`SplitMix64`]'s own.
trait Draws {
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool;
    /// One of `items`, each with probability proportional to its weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T;
}

impl Draws for SplitMix64 {
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < u64::from(*w) {
                return *item;
            }
            x -= u64::from(*w);
        }
        items[items.len() - 1].0
    }
}

/// One synthetic person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Index within the population.
    pub index: u64,
    /// National ID.
    pub id: NationalId,
    /// Full name, family name first.
    pub name: String,
    /// Gender.
    pub gender: Gender,
    /// Birth year.
    pub birth_year: u16,
    /// Province code of birth registration.
    pub province: u16,
}

/// A generated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenRecord {
    /// Collection name.
    pub collection: &'static str,
    /// Primary key (unique within the collection across the population).
    pub pk: String,
    /// The national ID it is filed under.
    pub id: NationalId,
    /// Payload.
    pub payload: Payload,
}

/// One step of the generated history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Insert or replace a record.
    Upsert(GenRecord),
    /// Upsert a record filed earlier under a mistyped ID with its right ID (the index entry
    /// must move).
    Correct(GenRecord),
    /// Delete a record.
    Delete {
        /// Collection name.
        collection: &'static str,
        /// Primary key.
        pk: String,
    },
}

/// The collections the generator writes.
pub const COLLECTIONS: [&str; 5] = ["residence", "tax", "social_insurance", "health_insurance", "vehicle"];

/// A seeded population of `persons` people; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population {
    /// Seed: the same seed and size give the same population and events.
    pub seed: u64,
    /// Number of persons.
    pub persons: u64,
    /// The "current" year of the population (ages are counted to it). Default: 2025.
    pub reference_year: u16,
}

/// Persons whose records a correction or deletion may be delayed past.
const MAX_DELAY: u64 = 2000;

impl Population {
    /// A population of `persons` people from `seed`.
    pub fn new(seed: u64, persons: u64) -> Population {
        Population { seed, persons, reference_year: 2025 }
    }

    fn rng(&self, i: u64, stream: u64) -> SplitMix64 {
        let mut r = SplitMix64::new(self.seed ^ i.wrapping_mul(0xd134_2543_de82_ef95) ^ stream);
        r.next_u64();
        r
    }

    /// Person `i` (`i < persons`, though any `i` gives a person).
    pub fn person(&self, i: u64) -> Person {
        let mut r = self.rng(i, 0);
        let province = r.weighted(&PROVINCE_WEIGHTS);
        let gender = if r.chance(498) { Gender::Male } else { Gender::Female };
        let age = sample_age(&mut r);
        let birth_year = self.reference_year.saturating_sub(age).max(1900);
        let serial = ((i % 1_000_000) * 618_033 + self.seed % 1_000_000) % 1_000_000;
        let id = NationalId::from_parts_clamped(province, gender, birth_year, serial as u32);
        let family = r.weighted(&FAMILY_NAMES);
        let (middle, given) = match gender {
            Gender::Male => (r.pick(&MIDDLE_MALE), r.pick(&GIVEN_MALE)),
            Gender::Female => (r.pick(&MIDDLE_FEMALE), r.pick(&GIVEN_FEMALE)),
        };
        Person { index: i, id, name: format!("{family} {middle} {given}"), gender, birth_year, province }
    }

    /// The records person `i` accumulates, in the order they are filed.
    pub fn records_of(&self, p: &Person) -> Vec<GenRecord> {
        let mut r = self.rng(p.index, 1);
        let i = p.index;
        let age = self.reference_year.saturating_sub(p.birth_year);
        let year = self.reference_year;
        let mut out = Vec::new();
        let rec = |collection, pk: String, payload| GenRecord { collection, pk, id: p.id, payload };
        if r.chance(980) {
            let province = if r.chance(800) { p.province } else { r.weighted(&PROVINCE_WEIGHTS) };
            let payload = Payload::Residence(Residence {
                full_name: p.name.clone(),
                date_of_birth: format!("{}-{:02}-{:02}", p.birth_year, 1 + r.below(12), 1 + r.below(28)),
                gender: if p.gender == Gender::Male { "male" } else { "female" }.into(),
                address: format!("Số {}, đường {}, phường {}", 1 + r.below(300), r.pick(&STREETS), 1 + r.below(20)),
                province,
                since: year - r.below(u64::from(age) + 1) as u16,
            });
            out.push(rec("residence", format!("{province:03}-{i:010}"), payload));
        }
        let working = (18..=65).contains(&age);
        if working && r.chance(600) {
            let payload = Payload::Tax(Tax {
                full_name: p.name.clone(),
                employer: r.pick(&EMPLOYERS).to_string(),
                bracket: 1 + r.below(7) as u8,
                registered: year - r.below(u64::from(age - 17)) as u16,
            });
            out.push(rec("tax", format!("8{i:09}"), payload));
        }
        if working && r.chance(550) {
            let payload = Payload::Insurance(Insurance {
                full_name: p.name.clone(),
                provider: r.pick(&EMPLOYERS).to_string(),
                level: 1 + r.below(5) as u8,
                valid_until: year + r.below(3) as u16,
            });
            out.push(rec("social_insurance", format!("{:02}{i:08}", p.province % 100), payload));
        }
        if r.chance(920) {
            let payload = Payload::Insurance(Insurance {
                full_name: p.name.clone(),
                provider: r.pick(&HOSPITALS).to_string(),
                level: 1 + r.below(5) as u8,
                valid_until: year + 1,
            });
            out.push(rec("health_insurance", format!("HS4{:02}{i:010}", p.province % 100), payload));
        }
        if age >= 18 {
            let n = match r.below(1000) {
                0..=299 => 0,
                300..=699 => 1,
                700..=899 => 2,
                900..=997 => 3,
                _ => 10 + r.below(21),
            };
            for k in 0..n {
                let car = r.chance(80);
                let payload = Payload::Vehicle(Vehicle {
                    owner: p.name.clone(),
                    kind: if car { "car" } else { "motorbike" }.into(),
                    model: r.pick(if car { &CARS } else { &MOTORBIKES }).to_string(),
                    year: year - r.below(20) as u16,
                });
                let plate = format!("{:02}{}-{i:09}.{k:02}", p.province % 100, if car { "A" } else { "B1" });
                out.push(rec("vehicle", plate, payload));
            }
        }
        out
    }

    /// Every event of the population's history, person by person; see the module docs.
    pub fn events(&self) -> Events {
        Events { pop: self.clone(), next: 0, ready: VecDeque::new(), delayed: VecDeque::new() }
    }
}

/// Ages 0-100: flat to 40, then declining to nothing at 100.
fn sample_age(r: &mut SplitMix64) -> u16 {
    const fn weight(age: u32) -> u32 {
        if age <= 40 {
            100
        } else if age <= 60 {
            100 - (age - 40) * 2
        } else {
            (60 * (100 - age)) / 40
        }
    }
    let total: u32 = (0..=100).map(weight).sum();
    let mut x = r.below(u64::from(total)) as u32;
    for age in 0..=100u32 {
        if x < weight(age) {
            return age as u16;
        }
        x -= weight(age);
    }
    100
}

/// The event stream of a [`Population`].
#[derive(Debug, Clone)]
pub struct Events {
    pop: Population,
    next: u64,
    ready: VecDeque<Event>,
    /// `(due person index, event)`, in due order.
    delayed: VecDeque<(u64, Event)>,
}

impl Events {
    /// Persons whose events have been generated so far.
    pub fn persons_done(&self) -> u64 {
        self.next
    }

    fn generate(&mut self, i: u64) {
        let p = self.pop.person(i);
        let mut r = self.pop.rng(i, 2);
        let mut records = self.pop.records_of(&p);
        if !records.is_empty() && r.chance(10) {
            // Filed under a mistyped ID (a changed serial), corrected later.
            let k = r.below(records.len() as u64) as usize;
            let right = records[k].clone();
            let wrong_serial = (p.id.serial() + 1 + r.below(999_998) as u32) % 1_000_000;
            records[k].id = NationalId::from_parts_clamped(p.province, p.gender, p.birth_year, wrong_serial);
            let due = i + 1 + r.below(MAX_DELAY);
            self.schedule(due, Event::Correct(right));
        }
        for rec in records {
            if rec.collection == "vehicle" && r.chance(30) {
                let due = i + 1 + r.below(MAX_DELAY);
                self.schedule(due, Event::Delete { collection: rec.collection, pk: rec.pk.clone() });
            }
            self.ready.push_back(Event::Upsert(rec));
        }
    }

    fn schedule(&mut self, due: u64, e: Event) {
        let at = self.delayed.partition_point(|(d, _)| *d <= due);
        self.delayed.insert(at, (due, e));
    }
}

impl Iterator for Events {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.next < self.pop.persons {
                while self.delayed.front().is_some_and(|(d, _)| *d <= self.next) {
                    if let Some((_, e)) = self.delayed.pop_front() {
                        self.ready.push_back(e);
                    }
                }
                let i = self.next;
                self.next += 1;
                self.generate(i);
            } else {
                return self.delayed.pop_front().map(|(_, e)| e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn deterministic_and_valid() {
        let pop = Population::new(7, 3000);
        let a: Vec<_> = pop.events().collect();
        let b: Vec<_> = pop.events().collect();
        assert_eq!(a, b);
        let rules = crate::record::IdRules::default();
        let ids: HashSet<_> = (0..3000).map(|i| pop.person(i).id).collect();
        assert_eq!(ids.len(), 3000, "IDs are unique");
        for id in &ids {
            rules.check(id).unwrap();
        }
    }

    #[test]
    fn realistic_shape() {
        let n = 20_000;
        let pop = Population::new(42, n);
        let mut per_person: HashMap<NationalId, usize> = HashMap::new();
        let (mut corrections, mut deletes, mut upserts) = (0, 0, 0);
        let mut seen: HashMap<(&str, String), NationalId> = HashMap::new();
        for e in pop.events() {
            match e {
                Event::Upsert(r) | Event::Correct(r) => {
                    upserts += 1;
                    if let Some(old) = seen.insert((r.collection, r.pk.clone()), r.id) {
                        if old != r.id {
                            corrections += 1;
                        }
                    }
                    *per_person.entry(r.id).or_default() += 1;
                }
                Event::Delete { .. } => deletes += 1,
            }
        }
        let mean = upserts as f64 / n as f64;
        assert!((3.0..5.0).contains(&mean), "mean records a person {mean}");
        assert!(corrections > n / 200 && corrections < n / 50, "{corrections}");
        assert!(deletes > 0);
        let none = (0..n).filter(|&i| !per_person.contains_key(&pop.person(i).id)).count();
        assert!(none > 0, "some persons have no record");
        assert!(per_person.values().any(|&c| c >= 10), "some persons have many");
        let hcm = (0..n).filter(|&i| pop.person(i).province == 79).count();
        assert!(hcm > n as usize / 20, "TP.HCM is one of the largest: {hcm}");
        let women = (0..n).filter(|&i| pop.person(i).gender == Gender::Female).count();
        assert!((n as usize * 45 / 100..n as usize * 55 / 100).contains(&women));
    }
}
