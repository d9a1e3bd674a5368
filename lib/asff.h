/*
 * asff.h: AWS Security Hub findings as soarutils events.
 *
 * A finding in the AWS Security Finding Format becomes an event with the
 * alert summary of DESIGN.md §2 and the ECS fields rules look at (cloud.*,
 * related.*, source/destination addresses, user.name), the finding itself
 * kept under aws.finding.  Findings arrive bare, in GetFindings pages, in
 * EventBridge events (one finding each) or in SNS notifications wrapping
 * those; asff_findings() takes any of them apart.
 */
#ifndef SOAR_ASFF_H
#define SOAR_ASFF_H

#include <stddef.h>

#include <jv.h>

/* Returns the event for one ASFF finding (borrowed).  region names the
 * region the finding was read from, used when the finding has none (NULL
 * when unknown). */
jv asff_event(jv finding, const char *region);

/* Copies the region of a finding into out: its Region, else the region
 * named in its ProductArn; "" when neither says. */
void asff_region(jv finding, char *out, size_t outsz);

/* Returns the findings a document holds, as an array: a bare finding, a
 * GetFindings page ({"Findings": [...]}), an EventBridge event of Security
 * Hub (detail.findings; "Findings Imported V2" carries OCSF findings, which
 * come back as they are), or an SNS notification whose Message is one of
 * those.  doc is borrowed.  For anything else, an invalid jv with a
 * message saying what the document is not. */
jv asff_findings(jv doc);

/* Returns the event for one OCSF finding of a V2 EventBridge event. */
jv asff_ocsf_event(jv finding, const char *region);

/* Whether an event from asff_findings() is OCSF (V2) rather than ASFF. */
int asff_is_ocsf(jv finding);

#endif
