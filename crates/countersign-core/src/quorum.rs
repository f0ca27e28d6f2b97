//! Counting approvals against requirements that name several groups.
//!
//! Each group needs its own number of distinct approvers, and one person fills one place
//! only, even when they belong to several of the groups (Bob in both finance and
//! security-admins does not satisfy "1 from finance and 1 from security-admins" alone).
//! Whether the approvals so far can fill every place is a bipartite matching between people
//! and places; [`fill`] finds a largest one by augmenting paths, so an early assignment
//! never blocks a later approver who could only fill the place someone else took. The
//! server decides with it and the approver's screen shows progress with it, so both count
//! the same way.

use crate::requirements::GroupQuorum;
use std::collections::BTreeMap;

/// How one group's places are filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFill {
    /// The group.
    pub group: String,
    /// Places the requirements ask for.
    pub required: u32,
    /// Who fills them, sorted.
    pub approvers: Vec<String>,
}

impl GroupFill {
    /// Places filled.
    pub fn filled(&self) -> u32 {
        u32::try_from(self.approvers.len()).unwrap_or(u32::MAX)
    }
}

/// Assigns approvers to the places of `quorum`, as many as can be filled.
///
/// `approvers` pairs each counted approver (never the requester) with the groups they
/// belonged to when they approved; an approver named twice counts once with both lists'
/// groups. The result is one entry per group of `quorum`, in its order, and does not depend
/// on the order of `approvers`.
pub fn fill(quorum: &[GroupQuorum], approvers: &[(String, Vec<String>)]) -> Vec<GroupFill> {
    let mut people: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, groups) in approvers {
        let slots = people.entry(id.as_str()).or_default();
        for (index, q) in quorum.iter().enumerate() {
            if groups.contains(&q.group) && !slots.contains(&index) {
                slots.push(index);
            }
        }
    }
    let (ids, eligible): (Vec<&str>, Vec<Vec<usize>>) = people.into_iter().unzip();
    let mut matching = Matching {
        required: quorum.iter().map(|q| q.approvers).collect(),
        load: vec![0; quorum.len()],
        assigned: vec![None; ids.len()],
        eligible,
    };
    for person in 0..ids.len() {
        let mut seen = vec![false; quorum.len()];
        matching.augment(person, &mut seen);
    }
    quorum
        .iter()
        .enumerate()
        .map(|(index, q)| GroupFill {
            group: q.group.clone(),
            required: q.approvers,
            approvers: ids
                .iter()
                .zip(&matching.assigned)
                .filter(|(_, slot)| **slot == Some(index))
                .map(|(id, _)| (*id).to_owned())
                .collect(),
        })
        .collect()
}

/// Whether every group of `fills` has all its places filled.
pub fn complete(fills: &[GroupFill]) -> bool {
    fills.iter().all(|f| f.filled() >= f.required)
}

/// A matching of people to groups with capacities, grown one person at a time.
struct Matching {
    required: Vec<u32>,
    load: Vec<u32>,
    /// The group each person fills a place of, if any.
    assigned: Vec<Option<usize>>,
    /// The groups each person may fill a place of.
    eligible: Vec<Vec<usize>>,
}

impl Matching {
    /// Finds a place for `person`, moving others to places they may also fill when that is
    /// what makes room. Each group is tried once per search (`seen`), so the recursion is at
    /// most as deep as there are groups.
    fn augment(&mut self, person: usize, seen: &mut [bool]) -> bool {
        for group in self.eligible[person].clone() {
            if std::mem::replace(&mut seen[group], true) {
                continue;
            }
            if self.load[group] < self.required[group] {
                self.load[group] += 1;
                self.assigned[person] = Some(group);
                return true;
            }
            let holders: Vec<usize> = (0..self.assigned.len())
                .filter(|&other| self.assigned[other] == Some(group))
                .collect();
            for holder in holders {
                if self.augment(holder, seen) {
                    // The holder moved to another group's free place (its load went up
                    // there); this group keeps its load with `person` in the holder's place.
                    self.assigned[person] = Some(group);
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(group: &str, approvers: u32) -> GroupQuorum {
        GroupQuorum {
            group: group.into(),
            approvers,
        }
    }

    fn who(id: &str, groups: &[&str]) -> (String, Vec<String>) {
        (id.into(), groups.iter().map(|g| (*g).to_owned()).collect())
    }

    fn filled(fills: &[GroupFill]) -> Vec<(String, Vec<String>)> {
        fills
            .iter()
            .map(|f| (f.group.clone(), f.approvers.clone()))
            .collect()
    }

    #[test]
    fn one_person_in_two_groups_fills_one_place() {
        let quorum = [q("finance", 1), q("security", 1)];
        let bob = who("bob", &["finance", "security"]);
        let fills = fill(&quorum, std::slice::from_ref(&bob));
        assert!(!complete(&fills));
        assert_eq!(fills.iter().map(GroupFill::filled).sum::<u32>(), 1);
        let fills = fill(&quorum, &[bob.clone(), bob]);
        assert!(!complete(&fills), "the same person twice is still one");
    }

    #[test]
    fn an_early_assignment_moves_aside_for_someone_who_has_only_one_place() {
        let quorum = [q("finance", 1), q("security", 1)];
        // "amy" sorts first and could take finance; carol can only fill finance.
        let people = [
            who("amy", &["finance", "security"]),
            who("carol", &["finance"]),
        ];
        let fills = fill(&quorum, &people);
        assert!(complete(&fills));
        assert_eq!(
            filled(&fills),
            [
                ("finance".into(), vec!["carol".to_owned()]),
                ("security".into(), vec!["amy".to_owned()])
            ]
        );
        let mut reversed = people.to_vec();
        reversed.reverse();
        assert_eq!(fill(&quorum, &reversed), fills, "order does not matter");
    }

    #[test]
    fn every_group_s_count_holds() {
        let quorum = [q("finance", 2), q("security", 1)];
        let fills = fill(
            &quorum,
            &[
                who("a", &["finance"]),
                who("b", &["finance"]),
                who("c", &["finance"]),
            ],
        );
        assert!(
            !complete(&fills),
            "three from finance are not one from security"
        );
        assert_eq!(fills[0].filled(), 2);
        let fills = fill(
            &quorum,
            &[
                who("a", &["finance"]),
                who("b", &["finance", "security"]),
                who("c", &["security", "finance"]),
            ],
        );
        assert!(complete(&fills));
        let fills = fill(&quorum, &[who("x", &["other"]), who("a", &["finance"])]);
        assert_eq!(filled(&fills)[1].1.len(), 0);
        assert!(complete(&fill(&[], &[])), "no groups: nothing to fill");
    }

    /// Against every assignment tried by brute force: the matching fills as many places as
    /// the best assignment does, for every small case of three groups and four people.
    #[test]
    fn fills_as_many_places_as_the_best_assignment() {
        let quorum = [q("a", 1), q("b", 2), q("c", 1)];
        let names = ["a", "b", "c"];
        for masks in 0..(8u32.pow(4)) {
            let people: Vec<(String, Vec<String>)> = (0..4)
                .map(|p| {
                    let mask = (masks >> (3 * p)) & 7;
                    let groups = (0..3)
                        .filter(|g| mask & (1 << g) != 0)
                        .map(|g| names[g].to_owned())
                        .collect();
                    (format!("p{p}"), groups)
                })
                .collect();
            let got: u32 = fill(&quorum, &people).iter().map(GroupFill::filled).sum();
            assert_eq!(got, best(&quorum, &people), "{people:?}");
        }
    }

    /// The most places any assignment of people (each to one of their groups or none) fills.
    fn best(quorum: &[GroupQuorum], people: &[(String, Vec<String>)]) -> u32 {
        fn go(quorum: &[GroupQuorum], people: &[(String, Vec<String>)], load: &mut [u32]) -> u32 {
            let Some(((_, groups), rest)) = people.split_first() else {
                return 0;
            };
            let mut most = go(quorum, rest, load);
            for (i, g) in quorum.iter().enumerate() {
                if groups.contains(&g.group) && load[i] < g.approvers {
                    load[i] += 1;
                    most = most.max(1 + go(quorum, rest, load));
                    load[i] -= 1;
                }
            }
            most
        }
        go(quorum, people, &mut vec![0; quorum.len()])
    }
}
