//! Place verification around the workflow's steps: the draft's places are checked before
//! `validate_plan`, so that a replaced place goes through the repairs, the checks and refinement like any
//! other; a refined draft's places are checked again before `finalize_plan` (answers already given cost
//! nothing the second time). What the checks said becomes `warnings`.

use tripstream_domain::places::{PlaceNote, place_warnings};
use tripstream_domain::plan::Day;

use crate::ports::{Draft, PlaceVerifier, PlanContext};

/// What place verification said over a run, pass after pass.
#[derive(Debug, Default)]
pub(crate) struct PlaceNotes(Vec<PlaceNote>);

impl PlaceNotes {
    /// Checks `draft`'s places (day `only` alone, 0-based, when set) with `verifier`, if there is one.
    pub(crate) async fn verify(
        &mut self,
        verifier: Option<&dyn PlaceVerifier>,
        ctx: &PlanContext,
        mut draft: Draft,
        only: Option<usize>,
    ) -> Draft {
        if let Some(verifier) = verifier {
            let notes = verifier.verify(ctx, &mut draft, only).await;
            for day in &mut draft.days {
                day.daily_cost = day.activities_cost();
            }
            if !notes.is_empty() {
                tracing::info!(notes = notes.len(), "place verification changed or flagged places");
            }
            self.0.extend(notes);
        }
        draft
    }

    /// The `warnings` for the places still in `days`.
    pub(crate) fn warnings(&self, ctx: &PlanContext, days: &[Day]) -> Vec<String> {
        place_warnings(ctx.request.language, &self.0, days)
    }
}
