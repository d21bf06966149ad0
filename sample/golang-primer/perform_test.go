package primer

import "testing"

func TestIsPrime(t *testing.T) {
	for n, want := range map[int64]bool{-7: false, 0: false, 1: false, 2: true, 9: false, 7907: true, 7909: false} {
		if got := IsPrime(n); got != want {
			t.Errorf("IsPrime(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestPerformRefusesMissingNumber(t *testing.T) {
	if _, err := Perform(map[string]interface{}{}); err == nil {
		t.Error("Perform without 'number' returned no error")
	}
}

func TestPerformAnswersFromJSONNumbers(t *testing.T) {
	got, err := Perform(map[string]interface{}{"number": float64(7907)})
	if err != nil || got != true {
		t.Errorf("Perform(7907) = %v, %v; want true, nil", got, err)
	}
}
