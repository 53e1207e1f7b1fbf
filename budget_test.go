package loope

import (
	"strings"
	"testing"
	"time"
)

// TestPlanSteps: a budget already used up is too short, with the reason;
// a long one plans at least one step and a deadline before its end.
func TestPlanSteps(t *testing.T) {
	cfg, _ := Preset("tiny")
	cfg.Classes = 10
	if _, _, err := PlanSteps(cfg, 4, 1, time.Now(), 8, 8, nil); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a used-up budget: got %v", err)
	}
	end := time.Now().Add(time.Hour)
	n, deadline, err := PlanSteps(cfg, 4, 1, end, 8, 8, nil)
	if err != nil || n < 1 || !deadline.Before(end) {
		t.Errorf("an hour: %d steps, deadline %v before the end %v: %v", n, deadline, end, err)
	}
}
