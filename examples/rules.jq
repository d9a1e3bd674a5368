# rules.jq: triage for decide -f.  First true rule wins.
# Alerts without a VirusTotal answer count as score 0.
contain: (.alert.severity == "critical" or .alert.severity == "high")
	and (.vt.verdict == "malicious" or (.vt.score // 0) >= 70)
escalate: .alert.severity == "critical"
	or .vt.verdict == "malicious"
	or (.vt.score // 0) >= 30
	or (.vt.error != null and .alert.severity == "high")
monitor: true
